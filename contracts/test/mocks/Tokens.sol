// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A plain 6-decimal stablecoin, as USDC looks to the escrow.
contract MockStablecoin is ERC20 {
    mapping(address account => bool) public blocked;

    constructor() ERC20("Mock USD", "mUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Blocks transfers to `account`, as a stablecoin issuer's blocklist does.
    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!blocked[to], "blocked");
        super._update(from, to, value);
    }
}

/// @notice A token that keeps 1% of every transfer: the escrow must refuse it.
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee token", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = value / 100;
        super._update(from, address(0xfee), fee);
        super._update(from, to, value - fee);
    }
}

/// @notice A token whose fee is paid by the sender on top of the amount: the recipient gets the whole amount,
/// so the escrow's incoming check cannot see it, but every payment out costs the escrow more than it owes.
/// Unsupported (SECURITY.md): the admin must not add it.
contract SenderFeeToken is ERC20 {
    constructor() ERC20("Sender fee token", "SFEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) super._update(from, address(0xfee), value / 100);
        super._update(from, to, value);
    }
}
