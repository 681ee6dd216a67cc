// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DynamicPriceEscrow} from "../../src/DynamicPriceEscrow.sol";
import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Vm} from "../Base.t.sol";

/// @notice Drives the escrow through random but valid-looking sequences of every external function,
/// over several customers, providers and offers, and keeps ghost records for the invariants.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    DynamicPriceEscrow public immutable escrow;
    address public immutable operator;
    address[] public customers;
    address[] public providers;
    uint256[] public offers;
    uint256[] public agreements;

    /// Sums over settled and refunded agreements, from the escrow's events' figures.
    uint256 public ghostDeposits;
    uint256 public ghostCharges;
    uint256 public ghostRefunds;
    mapping(uint256 id => uint8 status) public lastStatus;
    bool public statusWentBack;

    constructor(DynamicPriceEscrow escrow_, address owner, address operator_) {
        escrow = escrow_;
        operator = operator_;
        for (uint256 i = 1; i <= 3; i++) {
            customers.push(vm.addr(100 + i));
            providers.push(vm.addr(200 + i));
            vm.deal(customers[i - 1], 1_000_000 ether);
        }
        for (uint256 i = 0; i < 3; i++) {
            vm.prank(owner);
            offers.push(escrow.publishOffer(providers[i], uint128(1e9 * (i + 1) + i), uint64(600 * (i + 1))));
        }
    }

    function agreementCount() external view returns (uint256) {
        return agreements.length;
    }

    function customerCount() external view returns (uint256) {
        return customers.length;
    }

    function sign(uint256 who, uint256 offerSeed) external {
        address customer = customers[who % customers.length];
        uint256 offer = offers[offerSeed % offers.length];
        uint256 deposit = escrow.getOffer(offer).pricePerSecond * uint256(escrow.getOffer(offer).maxDuration);
        vm.prank(customer);
        agreements.push(escrow.sign{value: deposit}(offer));
        _track();
    }

    function activate(uint256 seed) external {
        if (agreements.length == 0) return;
        vm.prank(operator);
        try escrow.activate(agreements[seed % agreements.length]) {} catch {}
        _track();
    }

    function stop(uint256 seed) external {
        if (agreements.length == 0) return;
        uint256 id = agreements[seed % agreements.length];
        vm.prank(escrow.getAgreement(id).customer);
        try escrow.stop(id) {} catch {}
        _track();
    }

    function end(uint256 seed) external {
        if (agreements.length == 0) return;
        try escrow.end(agreements[seed % agreements.length]) {} catch {}
        _track();
    }

    function decline(uint256 seed) external {
        if (agreements.length == 0) return;
        vm.prank(operator);
        try escrow.decline(agreements[seed % agreements.length]) {} catch {}
        _track();
    }

    function reclaim(uint256 seed) external {
        if (agreements.length == 0) return;
        try escrow.reclaim(agreements[seed % agreements.length]) {} catch {}
        _track();
    }

    function settle(uint256 seed, uint16 availabilityBps) external {
        if (agreements.length == 0) return;
        vm.prank(operator);
        try escrow.settle(agreements[seed % agreements.length], uint16(availabilityBps % 10_001)) {} catch {}
        _track();
    }

    function settleOverdue(uint256 seed) external {
        if (agreements.length == 0) return;
        try escrow.settleOverdue(agreements[seed % agreements.length]) {} catch {}
        _track();
    }

    function withdraw(uint256 seed) external {
        address account = seed % 2 == 0 ? providers[seed / 2 % providers.length] : customers[seed / 2 % customers.length];
        vm.prank(account);
        try escrow.withdraw() {} catch {}
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 2 days);
    }

    /// Records each agreement's figures when it reaches a final status, and whether any status moved back.
    function _track() internal {
        for (uint256 i = 0; i < agreements.length; i++) {
            uint256 id = agreements[i];
            IDynamicPriceEscrow.Agreement memory a = escrow.getAgreement(id);
            uint8 status = uint8(a.status);
            uint8 before = lastStatus[id];
            if (status < before) statusWentBack = true;
            if (status == before) continue;
            lastStatus[id] = status;
            bool finished = a.status == IDynamicPriceEscrow.Status.Settled || a.status == IDynamicPriceEscrow.Status.Refunded;
            if (!finished) continue;
            uint256 deposit = escrow.depositOf(id);
            uint256 charge = 0;
            if (a.status == IDynamicPriceEscrow.Status.Settled && a.availabilityBps >= 7500) {
                charge = escrow.getOffer(a.offerId).pricePerSecond * uint256(a.endedAt - a.startedAt);
            }
            ghostDeposits += deposit;
            ghostCharges += charge;
            ghostRefunds += deposit - charge;
        }
    }
}
