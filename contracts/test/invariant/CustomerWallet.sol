// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A customer that is a contract: it refuses ETH unless told to accept (so refunds pushed to it must
/// be credited), signs stops through ERC-1271 with its owner's key, and makes any call its controller asks.
contract CustomerWallet {
    address public immutable owner;
    address public immutable controller;
    bool public accept;

    constructor(address owner_) {
        owner = owner_;
        controller = msg.sender;
    }

    /// Calls `target` with `data` and `value` (from this wallet's balance); bubbles a revert unchanged.
    function exec(address target, bytes calldata data, uint256 value) external returns (bytes memory ret) {
        require(msg.sender == controller, "not controller");
        bool ok;
        (ok, ret) = target.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function setAccept(bool value) external {
        require(msg.sender == controller, "not controller");
        accept = value;
    }

    /// ERC-1271: valid when the owner's key signed the digest.
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        return ecrecover(digest, v, r, s) == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }

    receive() external payable {
        require(accept, "refusing");
    }
}
