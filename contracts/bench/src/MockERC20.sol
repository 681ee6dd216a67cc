// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockERC20
/// @notice The token Sablier streams in the benchmark (Sablier streams ERC-20 tokens only): OpenZeppelin's
/// ERC20 with an open mint. Benchmark use only.
contract MockERC20 is ERC20 {
    constructor() ERC20("Bench USD", "bUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
