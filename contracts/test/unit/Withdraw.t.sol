// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {GasGuzzlingCustomer, ReentrantPayout, RefusingCustomer} from "../mocks/Actors.sol";

contract WithdrawTest is UnitBase {
    /// A FixedPrice conference settled at full availability: infra 0.06, software 0.03, owner 0.01 ether.
    function _settledFixed() internal returns (uint256 id) {
        id = _ended(fixedTerms, 10);
        _settle(id, 10_000);
    }

    /// A USD DynamicPrice conference of 600 seconds, settled: infra 36,000, software 18,000, owner 6,000.
    function _settledUsd() internal returns (uint256 id) {
        id = _sign(usdTerms);
        _activate(id);
        vm.warp(block.timestamp + 600);
        _stop(id);
        _settle(id, 10_000);
    }

    // ---- withdraw --------------------------------------------------------------------------------

    function test_RevertWhen_WithdrawNoCredit() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, stranger, uint8(0)));
        vm.prank(stranger);
        escrow.withdraw(0);
    }

    function test_RevertWhen_WithdrawCreditInAnotherToken() public {
        _settledFixed();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, admin, usdId));
        vm.prank(admin);
        escrow.withdraw(usdId);
    }

    function test_WhenOwnerHasMargin_WithdrawPaysIt() public {
        _settledFixed();
        vm.expectEmit();
        emit IConferenceEscrow.Withdrawn(admin, 0, FIXED_MARGIN);
        vm.prank(admin);
        escrow.withdraw(0);
        assertEq(admin.balance, FIXED_MARGIN, "margin paid");
        assertEq(escrow.creditOf(admin, 0), 0, "credit cleared");
        assertEq(address(escrow).balance, FIXED_INFRA + FIXED_SOFTWARE, "earnings remain");

        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, admin, uint8(0)));
        vm.prank(admin);
        escrow.withdraw(0);
    }

    function test_WhenErc20Credit_WithdrawPaysTokens() public {
        _settledUsd();
        vm.expectEmit();
        emit IConferenceEscrow.Withdrawn(admin, usdId, 6_000);
        vm.prank(admin);
        escrow.withdraw(usdId);
        assertEq(usd.balanceOf(admin), 6_000, "margin paid");
        assertEq(usd.balanceOf(address(escrow)), 54_000, "earnings remain");
    }

    function test_RevertWhen_WithdrawRecipientRefusesEth() public {
        RefusingCustomer rc = new RefusingCustomer();
        uint256 id = rc.sign{value: FIXED_PRICE}(escrow, fixedTerms);
        rc.stop(escrow, id); // refund refused: credited
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TransferFailed.selector, address(rc), FIXED_PRICE));
        rc.withdraw(escrow, 0);
        assertEq(escrow.creditOf(address(rc), 0), FIXED_PRICE, "credit kept");
    }

    // ---- withdrawEarnings ------------------------------------------------------------------------

    function test_RevertWhen_WithdrawEarningsNone() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoEarnings.selector, infraId, uint8(0)));
        escrow.withdrawEarnings(infraId, 0);
    }

    function test_RevertWhen_WithdrawEarningsUnknownProvider() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoEarnings.selector, uint32(99), uint8(0)));
        escrow.withdrawEarnings(99, 0);
    }

    function test_RevertWhen_WithdrawEarningsTwice() public {
        _settledFixed();
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoEarnings.selector, infraId, uint8(0)));
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
    }

    /// Regression (review, withdrawEarnings callable by anyone): only the provider decides when its earnings
    /// leave, so nobody can front-run its move away from a lost payout address.
    function test_RevertWhen_WithdrawEarningsCallerNotProvider() public {
        _settledFixed();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotProvider.selector, infraId, stranger));
        vm.prank(stranger);
        escrow.withdrawEarnings(infraId, 0);
        // Neither another provider nor the operator.
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotProvider.selector, infraId, software));
        vm.prank(software);
        escrow.withdrawEarnings(infraId, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotProvider.selector, infraId, operator));
        vm.prank(operator);
        escrow.withdrawEarnings(infraId, 0);
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "kept");
    }

    function test_RevertWhen_StrangerFrontRunsPayoutChange() public {
        // The provider's payout address stopped accepting the token; it moves its payout. A stranger who saw
        // the update coming cannot pay the lost address first.
        _settledUsd();
        usd.setBlocked(softwarePayout, true);
        address cold = _account(43, "cold");
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotProvider.selector, softwareId, stranger));
        vm.prank(stranger);
        escrow.withdrawEarnings(softwareId, usdId);
        vm.prank(software);
        registry.update(cold, ALL_REGIONS, true);
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, usdId);
        assertEq(usd.balanceOf(cold), 18_000, "paid to the new payout");
    }

    function test_WhenProviderAccountCalls_PaidToPayout() public {
        _settledFixed();
        vm.expectEmit();
        emit IConferenceEscrow.EarningsWithdrawn(infraId, 0, infraPayout, FIXED_INFRA);
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        assertEq(infraPayout.balance, FIXED_INFRA, "paid to the payout address");
        assertEq(infra.balance, 0, "not to the signing account");
        assertEq(escrow.earningsOf(infraId, 0), 0, "cleared");
        assertEq(escrow.earningsOf(softwareId, 0), FIXED_SOFTWARE, "others untouched");
    }

    function test_WhenPayoutAddressCalls_PaidToItself() public {
        _settledFixed();
        vm.prank(infraPayout);
        escrow.withdrawEarnings(infraId, 0);
        assertEq(infraPayout.balance, FIXED_INFRA, "paid to the payout address");
        assertEq(escrow.earningsOf(infraId, 0), 0, "cleared");
    }

    function test_WhenErc20Earnings_PaidInTokens() public {
        _settledUsd();
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, usdId);
        assertEq(usd.balanceOf(softwarePayout), 18_000, "software paid");
        assertEq(usd.balanceOf(address(escrow)), 42_000, "the rest remains");
    }

    function test_WhenPayoutChanged_PaidToNewPayout() public {
        _settledFixed();
        address cold = _account(41, "cold");
        vm.prank(infra);
        registry.update(cold, EU_US, true);
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        assertEq(cold.balance, FIXED_INFRA, "new payout");
        assertEq(infraPayout.balance, 0, "old payout");
    }

    function test_WhenProviderDeregistered_EarningsStillPaid() public {
        _settledFixed();
        vm.prank(software);
        registry.deregister();
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, 0);
        assertEq(softwarePayout.balance, FIXED_SOFTWARE, "still paid");
    }

    /// Regression (review, a provider that left cannot move its payout): a provider that left keeps earning
    /// under terms still open; when its payout address stops accepting the token it moves its payout and
    /// withdraws: leaving never strands earnings.
    function test_WhenProviderLeftAndPayoutBlocked_MovesPayoutAndWithdraws() public {
        uint256 id = _sign(usdTerms);
        vm.prank(software);
        registry.deregister();
        _activate(id);
        vm.warp(T0 + 600);
        _stop(id);
        _settle(id, 10_000);
        usd.setBlocked(softwarePayout, true);
        vm.expectRevert(abi.encodeWithSignature("Error(string)", "blocked"));
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, usdId);

        address fresh = _account(44, "fresh");
        vm.prank(software);
        registry.update(fresh, ALL_REGIONS, true);
        assertEq(registry.providerOf(softwareId).active, false, "still gone");
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, usdId);
        assertEq(usd.balanceOf(fresh), 18_000, "earned after leaving, paid to the new payout");
    }

    function test_WhenProviderDeregistered_SignedAgreementStillPaysIt() public {
        uint256 id = _active(dynamicTerms);
        vm.prank(software);
        registry.deregister();
        vm.warp(T0 + 100);
        _stop(id);
        _settle(id, 10_000);
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, 0);
        assertEq(softwarePayout.balance, 100 * SECOND_SOFTWARE, "earned after leaving");
    }

    function test_RevertWhen_PayoutRefusesEth() public {
        RefusingCustomer payout = new RefusingCustomer();
        vm.prank(infra);
        registry.update(address(payout), EU_US, true);
        _settledFixed();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TransferFailed.selector, address(payout), FIXED_INFRA));
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "kept");
    }

    function test_WhenPayoutReenters_ReentryFailsAndPaidOnce() public {
        ReentrantPayout payout = new ReentrantPayout();
        address evil = _account(42, "evil");
        uint32 evilId = _register(evil, IProviderRegistry.Role.Infrastructure, address(payout), EU_US, true);
        payout.target(escrow, evilId);
        uint32 termsId = _customOffer(
            IOfferBook.Model.FixedPrice,
            0,
            MAX_DURATION,
            _two(evil, software),
            _amounts(FIXED_INFRA, FIXED_SOFTWARE),
            FIXED_MARGIN,
            0
        );
        // Other money is held too: a re-entry that got through could only take it.
        uint256 first = _ended(termsId, 10);
        _settle(first, 10_000);
        _settledFixed();
        uint256 held = address(escrow).balance;

        vm.prank(evil);
        escrow.withdrawEarnings(evilId, 0);
        assertTrue(payout.reentered(), "tried");
        assertTrue(payout.reentryFailed(), "re-entry refused");
        assertEq(address(payout).balance, FIXED_INFRA, "paid exactly once");
        assertEq(escrow.earningsOf(evilId, 0), 0, "cleared");
        assertEq(address(escrow).balance, held - FIXED_INFRA, "nothing else left");
    }

    // ---- refunds that cannot be pushed are credited ----------------------------------------------

    function test_WhenCustomerRefusesEth_CancellationCredited() public {
        RefusingCustomer rc = new RefusingCustomer();
        uint256 id = rc.sign{value: FIXED_PRICE}(escrow, fixedTerms);
        vm.expectEmit();
        emit IConferenceEscrow.Credited(address(rc), 0, FIXED_PRICE);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.CancelledByCustomer, FIXED_PRICE, true);
        rc.stop(escrow, id);
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
        assertEq(escrow.creditOf(address(rc), 0), FIXED_PRICE, "credited");

        rc.setAccept(true);
        rc.withdraw(escrow, 0);
        assertEq(address(rc).balance, FIXED_PRICE, "withdrawn");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    function test_WhenCustomerRefusesEth_SettlementSucceedsAndRefundCredited() public {
        RefusingCustomer rc = new RefusingCustomer();
        uint256 id = rc.sign{value: DYNAMIC_DEPOSIT}(escrow, dynamicTerms);
        _activate(id);
        vm.warp(T0 + 600);
        rc.stop(escrow, id);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 6e14, 3e15, true);
        _settle(id, 10_000);
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
        assertEq(escrow.creditOf(address(rc), 0), 3e15, "refund credited");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "providers paid as usual");
        assertEq(address(escrow).balance, DYNAMIC_DEPOSIT, "all held");

        rc.setAccept(true);
        rc.withdraw(escrow, 0);
        assertEq(address(rc).balance, 3e15, "withdrawn");
    }

    function test_WhenCustomerBurnsGas_DeclineSucceedsAndRefundCredited() public {
        GasGuzzlingCustomer gg = new GasGuzzlingCustomer();
        uint256 id = gg.sign{value: FIXED_PRICE}(escrow, fixedTerms);
        uint256 gasBefore = gasleft();
        vm.prank(operator);
        escrow.decline(id);
        uint256 used = gasBefore - gasleft();
        assertTrue(used < 200_000, "bounded gas");
        assertEq(escrow.creditOf(address(gg), 0), FIXED_PRICE, "credited");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenCustomerBurnsGas_SettlementSucceeds() public {
        GasGuzzlingCustomer gg = new GasGuzzlingCustomer();
        uint256 id = gg.sign{value: DYNAMIC_DEPOSIT}(escrow, dynamicTerms);
        _activate(id);
        vm.warp(T0 + MAX_DURATION);
        escrow.end(id);
        _settle(id, 5000);
        assertEq(escrow.creditOf(address(gg), 0), DYNAMIC_DEPOSIT, "everything credited");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenErc20RefundToBlockedAddress_Credited() public {
        uint256 id = _sign(usdTerms);
        _activate(id);
        vm.warp(T0 + 600);
        _stop(id);
        usd.setBlocked(customer, true);
        vm.expectEmit();
        emit IConferenceEscrow.Credited(customer, usdId, 300_000);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 60_000, 300_000, true);
        _settle(id, 10_000);
        assertEq(usd.balanceOf(customer), USD_MINTED - USD_DEPOSIT, "nothing sent");
        assertEq(escrow.creditOf(customer, usdId), 300_000, "credited");

        vm.expectRevert(abi.encodeWithSignature("Error(string)", "blocked"));
        vm.prank(customer);
        escrow.withdraw(usdId);

        usd.setBlocked(customer, false);
        vm.prank(customer);
        escrow.withdraw(usdId);
        assertEq(usd.balanceOf(customer), USD_MINTED - 60_000, "refund withdrawn");
    }

    function test_WhenErc20CancelToBlockedAddress_Credited() public {
        uint256 id = _sign(usdTerms);
        usd.setBlocked(customer, true);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.DeclinedByOperator, USD_DEPOSIT, true);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(escrow.creditOf(customer, usdId), USD_DEPOSIT, "credited");
    }
}
