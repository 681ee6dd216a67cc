// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract StopTest is UnitBase {
    // ---- stop: requirements ----------------------------------------------------------------------

    function test_RevertWhen_StopAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        vm.prank(customer);
        escrow.stop(1);
    }

    function test_RevertWhen_StopCallerNotCustomer() public {
        uint256 id = _active(fixedTerms);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, operator));
        vm.prank(operator);
        escrow.stop(id);
    }

    function test_RevertWhen_StopIdleSession() public {
        uint256 id = _buyMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        vm.prank(customer);
        escrow.stop(id);
    }

    function test_RevertWhen_StopIdleReservation() public {
        uint256 id = _reserve(_now() + 10, _now() + 100);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        vm.prank(customer);
        escrow.stop(id);
    }

    function test_RevertWhen_StopEnded() public {
        uint256 id = _ended(dynamicTerms, 10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Ended);
        vm.prank(customer);
        escrow.stop(id);
    }

    function test_RevertWhen_StopSettled() public {
        uint256 id = _ended(dynamicTerms, 10);
        _settle(id, 10_000);
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        vm.prank(customer);
        escrow.stop(id);
    }

    function test_RevertWhen_StopRefunded() public {
        uint256 id = _sign(fixedTerms);
        _stop(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Refunded);
        vm.prank(customer);
        escrow.stop(id);
    }

    // ---- stop before the start: calls it off -----------------------------------------------------

    function test_WhenFixedPriceRequested_StopRefundsEverything() public {
        uint256 id = _sign(fixedTerms);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(
            id, IConferenceEscrow.CancelReason.CancelledByCustomer, FIXED_PRICE, false
        );
        _stop(id);
        assertEq(customer.balance - before, FIXED_PRICE, "everything back");
        assertEq(address(escrow).balance, 0, "escrow empty");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenDynamicPriceRequested_StopRefundsEverything() public {
        uint256 id = _sign(dynamicTerms);
        uint256 before = customer.balance;
        _stop(id);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT, "everything back");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenErc20Requested_StopRefundsTokens() public {
        uint256 id = _sign(usdTerms);
        _stop(id);
        assertEq(usd.balanceOf(customer), USD_MINTED, "everything back");
        assertEq(usd.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_WhenTimeLimitedRequested_StopReturnsToIdle() public {
        uint256 id = _buyMinutes(10);
        _start(id);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.CancelledByCustomer, 0, false);
        _stop(id);
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Idle, "idle");
        assertEq(a.startedAt, 0, "start cleared");
        assertEq(a.duration, 600, "nothing consumed");
        assertEq(customer.balance, before, "no refund");
        assertEq(address(escrow).balance, 6e14, "deposit stays");
    }

    /// Per the lifecycle in IConferenceEscrow: Requested ──stop (customer)──► Idle for FlexiblePeriod: the
    /// reservation stays, and so does its non-refundable minimum.
    function test_WhenFlexiblePeriodRequested_StopKeepsTheReservation() public {
        uint256 id = _reserve(_now(), _now() + 4000);
        _start(id);
        uint256 deposit = MINIMUM_CHARGE + 4000 * SECOND_PRICE;
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.CancelledByCustomer, 0, false);
        _stop(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle: the window is still reserved");
        assertEq(customer.balance, before, "the minimum is not refundable, so nothing comes back yet");
        assertEq(address(escrow).balance, deposit, "all still held");
        _start(id); // and it may be started again inside the window
        assertEq(_status(id), IConferenceEscrow.Status.Requested, "requested again");
    }

    // ---- stop while running: ends it -------------------------------------------------------------

    function test_WhenActive_StopEndsNow() public {
        uint256 id = _active(dynamicTerms);
        vm.warp(T0 + 600);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T0 + 600, customer);
        _stop(id);
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Ended, "ended");
        assertEq(a.endedAt, T0 + 600, "endedAt now");
        assertEq(address(escrow).balance, DYNAMIC_DEPOSIT, "nothing paid yet");
    }

    function test_WhenActivePastEndTime_StopEndsAtEndTime() public {
        uint256 id = _active(fixedTerms);
        vm.warp(T0 + MAX_DURATION + 500);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T0 + MAX_DURATION, customer);
        _stop(id);
        assertEq(escrow.agreementOf(id).endedAt, T0 + MAX_DURATION, "clamped to end time");
    }

    function test_WhenSessionActive_StopEndsNow() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 90);
        _stop(id);
        assertEq(_status(id), IConferenceEscrow.Status.Ended, "ended");
        assertEq(escrow.agreementOf(id).endedAt, T0 + 90, "endedAt");
    }

    function test_WhenSessionPastItsMinutes_StopEndsWhenMinutesRanOut() public {
        uint256 id = _activeMinutes(1);
        vm.warp(T0 + 1000);
        _stop(id);
        assertEq(escrow.agreementOf(id).endedAt, T0 + 60, "one minute");
    }

    function test_WhenFlexibleActivePastWindow_StopEndsAtWindowEnd() public {
        uint256 id = _activeFlexible(); // window [T0+100, T0+4100), active from T0+100
        vm.warp(T0 + 9000);
        _stop(id);
        assertEq(escrow.agreementOf(id).endedAt, T0 + 4100, "window end");
    }

    // ---- end -------------------------------------------------------------------------------------

    function test_RevertWhen_EndAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 3));
        escrow.end(3);
    }

    function test_RevertWhen_EndRequested() public {
        uint256 id = _sign(fixedTerms);
        vm.warp(T0 + MAX_DURATION);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        escrow.end(id);
    }

    function test_RevertWhen_EndAlreadyEnded() public {
        uint256 id = _ended(fixedTerms, MAX_DURATION);
        _expectWrongStatus(id, IConferenceEscrow.Status.Ended);
        escrow.end(id);
    }

    function test_RevertWhen_EndBeforeEndTime() public {
        uint256 id = _active(fixedTerms);
        vm.warp(T0 + MAX_DURATION - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotExpired.selector, id, T0 + MAX_DURATION));
        vm.prank(stranger);
        escrow.end(id);
    }

    function test_WhenEndTimeReached_AnyoneEnds() public {
        uint256 id = _active(fixedTerms);
        vm.warp(T0 + MAX_DURATION);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T0 + MAX_DURATION, stranger);
        vm.prank(stranger);
        escrow.end(id);
        assertEq(_status(id), IConferenceEscrow.Status.Ended, "ended");
        assertEq(escrow.agreementOf(id).endedAt, T0 + MAX_DURATION, "at end time");
    }

    function test_WhenEndTimeLongPassed_EndsAtEndTime() public {
        uint256 id = _activeMinutes(2);
        vm.warp(T0 + 7 days);
        escrow.end(id);
        assertEq(escrow.agreementOf(id).endedAt, T0 + 120, "at end time");
    }

    // ---- reclaim ---------------------------------------------------------------------------------

    function test_RevertWhen_ReclaimAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        escrow.reclaim(1);
    }

    function test_RevertWhen_ReclaimActive() public {
        uint256 id = _active(fixedTerms);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        escrow.reclaim(id);
    }

    function test_RevertWhen_ReclaimIdle() public {
        uint256 id = _buyMinutes(1);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        escrow.reclaim(id);
    }

    function test_RevertWhen_ReclaimWithinActivationWindow() public {
        uint256 id = _sign(fixedTerms);
        vm.warp(T0 + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_ActivationWindowOpen.selector, id, T0 + ACTIVATION_WINDOW));
        vm.prank(stranger);
        escrow.reclaim(id);
    }

    function test_WhenActivationTimedOut_AnyoneReclaimsForCustomer() public {
        uint256 id = _sign(dynamicTerms);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(
            id, IConferenceEscrow.CancelReason.ActivationTimedOut, DYNAMIC_DEPOSIT, false
        );
        vm.prank(stranger);
        escrow.reclaim(id);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT, "everything back to the customer");
        assertEq(stranger.balance, 0, "nothing to the caller");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenSessionTimedOut_ReclaimReturnsToIdle() public {
        uint256 id = _buyMinutes(10);
        _start(id);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.ActivationTimedOut, 0, false);
        escrow.reclaim(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        assertEq(escrow.agreementOf(id).duration, 600, "nothing consumed");
        assertEq(address(escrow).balance, 6e14, "deposit stays");
    }

    function test_WhenFlexibleTimedOut_ReclaimRefundsEverything() public {
        uint256 id = _reserve(_now(), _now() + 4000);
        _start(id);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        uint256 before = customer.balance;
        escrow.reclaim(id);
        assertEq(customer.balance - before, MINIMUM_CHARGE + 4000 * SECOND_PRICE, "minimum included");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    // ---- decline ---------------------------------------------------------------------------------

    function test_RevertWhen_DeclineCallerNotOperator() public {
        uint256 id = _sign(fixedTerms);
        _expectUnauthorized(customer, OPERATOR_ROLE);
        vm.prank(customer);
        escrow.decline(id);
    }

    function test_RevertWhen_DeclineAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 2));
        vm.prank(operator);
        escrow.decline(2);
    }

    function test_RevertWhen_DeclineActive() public {
        uint256 id = _active(fixedTerms);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        vm.prank(operator);
        escrow.decline(id);
    }

    function test_RevertWhen_DeclineIdle() public {
        uint256 id = _buyMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        vm.prank(operator);
        escrow.decline(id);
    }

    function test_WhenFixedPriceRequested_DeclineRefundsEverything() public {
        uint256 id = _sign(fixedTerms);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.DeclinedByOperator, FIXED_PRICE, false);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(customer.balance - before, FIXED_PRICE, "everything back");
        assertEq(operator.balance, 0, "nothing to the operator");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenSessionRequested_DeclineReturnsToIdle() public {
        uint256 id = _buyMinutes(10);
        _start(id);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.DeclinedByOperator, 0, false);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        assertEq(escrow.agreementOf(id).startedAt, 0, "start cleared");
    }

    function test_WhenFlexibleRequested_DeclineRefundsEverything() public {
        uint256 id = _reserve(_now(), _now() + 4000);
        _start(id);
        uint256 deposit = MINIMUM_CHARGE + 4000 * SECOND_PRICE;
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.DeclinedByOperator, deposit, false);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(customer.balance - before, deposit, "minimum included");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
    }

    function test_WhenErc20Requested_DeclineRefundsTokens() public {
        uint256 id = _sign(usdTerms);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(usd.balanceOf(customer), USD_MINTED, "everything back");
    }

    // ---- FixedPrice: a stop that races the activation (review) ------------------------------------

    /// What a FixedPrice customer should expect: a stop mined before the activation calls the start off and
    /// refunds everything; one mined after it ends a conference that was started, and the price is due, even
    /// for 0 seconds (the operator deployed the conference; README "FixedPrice and the race with activation").
    function test_WhenFixedPriceStopMinedBeforeActivation_RefundsEverything() public {
        uint256 id = _sign(fixedTerms);
        uint256 before = customer.balance;
        _stop(id);
        assertEq(customer.balance - before, FIXED_PRICE, "called off: everything back");
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IConferenceEscrow.Status.Refunded)
        );
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_WhenFixedPriceStopMinedAfterActivation_PriceDue() public {
        uint256 id = _sign(fixedTerms);
        _activate(id);
        _stop(id); // same second: 0 seconds used
        assertEq(escrow.agreementOf(id).endedAt, T0, "ended at once");
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance, before, "the price is due: nothing back");
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "providers paid");
    }
}
