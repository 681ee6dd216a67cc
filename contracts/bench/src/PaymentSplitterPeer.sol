// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PaymentSplitter} from "@openzeppelin/contracts-4.9/finance/PaymentSplitter.sol";

/// @title PaymentSplitterPeer
/// @notice Brings OpenZeppelin 4.9's PaymentSplitter (removed in 5.0) into this build, so that
/// out/PaymentSplitter.sol/PaymentSplitter.json holds its ABI and bytecode: the benchmark deploys that
/// original, unchanged, not this subclass (which exists because forge warns on an import-only file).
contract PaymentSplitterPeer is PaymentSplitter {
    constructor(address[] memory payees, uint256[] memory shares_) payable PaymentSplitter(payees, shares_) {}
}
