// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

import {ConferenceEscrow} from "../../src/ConferenceEscrow.sol";

/// @notice A customer contract that refuses ETH until told to accept: its refunds must be credited,
/// never block a settlement.
contract RefusingCustomer {
    bool public accept;

    function sign(ConferenceEscrow escrow, uint32 termsId) external payable returns (uint256) {
        return escrow.sign{value: msg.value}(termsId, 0, false);
    }

    function stop(ConferenceEscrow escrow, uint256 id) external {
        escrow.stop(id);
    }

    function withdraw(ConferenceEscrow escrow, uint8 tokenId) external {
        escrow.withdraw(tokenId);
    }

    function setAccept(bool value) external {
        accept = value;
    }

    receive() external payable {
        require(accept, "refusing");
    }
}

/// @notice A customer whose receive hook burns all the gas it is given.
contract GasGuzzlingCustomer {
    function sign(ConferenceEscrow escrow, uint32 termsId) external payable returns (uint256) {
        return escrow.sign{value: msg.value}(termsId, 0, false);
    }

    receive() external payable {
        while (true) {}
    }
}

/// @notice A payout address that tries to re-enter the escrow when paid.
contract ReentrantPayout {
    ConferenceEscrow public escrow;
    uint32 public providerId;
    bool public reentered;
    bool public reentryFailed;

    function target(ConferenceEscrow escrow_, uint32 providerId_) external {
        escrow = escrow_;
        providerId = providerId_;
    }

    receive() external payable {
        if (!reentered) {
            reentered = true;
            try escrow.withdrawEarnings(providerId, 0) {}
            catch {
                reentryFailed = true;
            }
        }
    }
}

/// @notice A smart-contract wallet (ERC-1271) whose owner key signs for it.
contract SmartWallet is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function sign(ConferenceEscrow escrow, uint32 termsId) external payable returns (uint256) {
        return escrow.sign{value: msg.value}(termsId, 0, false);
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        return ecrecover(digest, v, r, s) == owner ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    receive() external payable {}
}

/// @notice Code an EOA delegates to under EIP-7702 that knows nothing of ERC-1271 (a batch executor, say): the
/// account's own key must still be able to sign its stops.
contract BatchDelegate {
    function execute(address[] calldata targets, bytes[] calldata data) external payable {
        require(msg.sender == address(this), "only the account itself");
        for (uint256 i; i < targets.length; ++i) {
            (bool ok,) = targets[i].call(data[i]);
            require(ok, "call failed");
        }
    }

    receive() external payable {}
}

/// @notice Delegated code that implements ERC-1271 and refuses everything: the account's own key still rules.
contract RefusingErc1271Delegate is IERC1271 {
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        return 0xffffffff;
    }

    receive() external payable {}
}
