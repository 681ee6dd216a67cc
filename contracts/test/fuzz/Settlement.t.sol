// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DynamicPriceEscrow} from "../../src/DynamicPriceEscrow.sol";
import {BaseTest} from "../Base.t.sol";

/// @notice For any price, maximum duration, activation delay, stop time and availability: the charge
/// follows the formula and charge + refund == deposit, to the wei, in the balances themselves.
contract SettlementFuzzTest is BaseTest {
    function testFuzz_ChargePlusRefundEqualsDeposit(
        uint128 price,
        uint64 maxDuration,
        uint256 activationDelay,
        uint256 stopAfter,
        uint16 availabilityBps
    ) external {
        price = uint128(bound(price, 1, type(uint128).max / 2));
        maxDuration = uint64(bound(maxDuration, 1, 10 * 365 days));
        // Keep the deposit payable: at most 2^160 wei.
        vm.assume(uint256(price) * maxDuration <= type(uint160).max);
        activationDelay = bound(activationDelay, 0, ACTIVATION_WINDOW);
        stopAfter = bound(stopAfter, 0, uint256(maxDuration) * 2);
        availabilityBps = uint16(bound(availabilityBps, 0, 10_000));

        vm.prank(owner);
        uint256 offer = escrow.publishOffer(provider, price, maxDuration);
        uint256 deposit = uint256(price) * maxDuration;
        vm.deal(customer, deposit);
        vm.prank(customer);
        uint256 id = escrow.sign{value: deposit}(offer);

        vm.warp(block.timestamp + activationDelay);
        vm.prank(operator);
        escrow.activate(id);
        vm.warp(block.timestamp + stopAfter);
        vm.prank(customer);
        escrow.stop(id);
        vm.prank(operator);
        escrow.settle(id, availabilityBps);

        uint256 used = stopAfter < maxDuration ? stopAfter : maxDuration;
        uint256 charge = availabilityBps < 7500 ? 0 : uint256(price) * used;
        assertEq(escrow.withdrawable(provider), charge, "provider credited the formula's charge");
        assertEq(customer.balance, deposit - charge, "customer refunded deposit - charge");
        assertEq(escrow.withdrawable(provider) + customer.balance, deposit, "charge + refund == deposit");
        assertEq(address(escrow).balance, charge, "the escrow holds only what it owes");
    }

    function testFuzz_ExpiryEndsAtTheMaximum(uint64 maxDuration, uint256 lateBy) external {
        maxDuration = uint64(bound(maxDuration, 1, 365 days));
        lateBy = bound(lateBy, 0, 365 days);
        vm.prank(owner);
        uint256 offer = escrow.publishOffer(provider, PRICE, maxDuration);
        uint256 deposit = uint256(PRICE) * maxDuration;
        vm.deal(customer, deposit);
        vm.prank(customer);
        uint256 id = escrow.sign{value: deposit}(offer);
        vm.prank(operator);
        escrow.activate(id);
        vm.warp(block.timestamp + maxDuration + lateBy);
        escrow.end(id);
        vm.warp(block.timestamp + SETTLEMENT_WINDOW + 1);
        escrow.settleOverdue(id);
        assertEq(escrow.withdrawable(provider), deposit, "the whole deposit was used");
        assertEq(customer.balance, 0, "nothing to refund");
    }
}
