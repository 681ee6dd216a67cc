// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract SettleTest is UnitBase {
    // ---- settle: requirements --------------------------------------------------------------------

    function test_RevertWhen_SettleCallerNotOperator() public {
        uint256 id = _ended(fixedTerms, 10);
        _expectUnauthorized(stranger, OPERATOR_ROLE);
        vm.prank(stranger);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleAvailabilityAboveWhole() public {
        uint256 id = _ended(fixedTerms, 10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAvailability.selector, uint16(10_001)));
        vm.prank(operator);
        escrow.settle(id, 10_001, bytes32(0), "");
    }

    function test_RevertWhen_SettleAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        vm.prank(operator);
        escrow.settle(1, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleRequested() public {
        uint256 id = _sign(fixedTerms);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleActive() public {
        uint256 id = _active(dynamicTerms);
        vm.warp(T0 + 100);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleTwice() public {
        uint256 id = _ended(fixedTerms, 10);
        _settle(id, 10_000);
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleRefunded() public {
        uint256 id = _sign(fixedTerms);
        _stop(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Refunded);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleIdleSession() public {
        uint256 id = _buyMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    function test_RevertWhen_SettleUnusedWindowBeforeItEnds() public {
        uint40 to = _now() + 4100;
        uint256 id = _reserve(_now() + 100, to);
        vm.warp(to - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WindowOpen.selector, id, to));
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    // ---- settle: FixedPrice ----------------------------------------------------------------------

    function test_WhenFixedPriceFullAvailability_ChargesPriceAndSplits() public {
        uint256 id = _ended(fixedTerms, 10);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.Credited(admin, 0, FIXED_MARGIN);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, FIXED_PRICE, 0, false);
        _settle(id, 10_000);

        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
        assertEq(customer.balance, before, "no refund: the price is due whatever the use");
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), FIXED_SOFTWARE, "software");
        assertEq(escrow.creditOf(admin, 0), FIXED_MARGIN, "owner's margin");
        assertEq(address(escrow).balance, FIXED_PRICE, "held until withdrawn");
    }

    function test_WhenAvailabilityExactly75Percent_Charges() public {
        uint256 id = _ended(fixedTerms, 10);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 7500, EVIDENCE, FIXED_PRICE, 0, false);
        _settle(id, 7500);
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "infra");
    }

    function test_WhenAvailabilityBelow75Percent_RefundsEverything() public {
        uint256 id = _ended(fixedTerms, 10);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 7499, EVIDENCE, 0, FIXED_PRICE, false);
        _settle(id, 7499);
        assertEq(customer.balance - before, FIXED_PRICE, "everything back");
        assertEq(escrow.earningsOf(infraId, 0), 0, "infra nothing");
        assertEq(escrow.earningsOf(softwareId, 0), 0, "software nothing");
        assertEq(escrow.creditOf(admin, 0), 0, "owner nothing");
        assertEq(address(escrow).balance, 0, "escrow empty");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenSplitRoundsDown_OwnerGetsTheDust() public {
        // Components 2 and 3, no margin: price 5, 6 with the GDPR surcharge.
        uint32 termsId =
            _customOffer(IOfferBook.Model.FixedPrice, 0, MAX_DURATION, _two(infra, software), _amounts(2, 3), 0, 0);
        vm.prank(customer);
        uint256 id = escrow.sign{value: 6}(termsId, 0, true);
        _activate(id);
        _stop(id);
        _settle(id, 10_000);
        assertEq(escrow.earningsOf(infraId, 0), 2, "floor(6 x 2 / 5)");
        assertEq(escrow.earningsOf(softwareId, 0), 3, "floor(6 x 3 / 5)");
        assertEq(escrow.creditOf(admin, 0), 1, "dust to the owner");
    }

    // ---- settle: DynamicPrice --------------------------------------------------------------------

    function test_WhenDynamicPrice_ChargesSecondsUsed() public {
        uint256 id = _ended(dynamicTerms, 600);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 9000, EVIDENCE, 6e14, 3e15, false);
        _settle(id, 9000);
        assertEq(customer.balance - before, 3e15, "3.6e15 - 600 x 1e12");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "infra 600 x 6e11");
        assertEq(escrow.earningsOf(softwareId, 0), 1.8e14, "software 600 x 3e11");
        assertEq(escrow.creditOf(admin, 0), 6e13, "margin 600 x 1e11");
        assertEq(address(escrow).balance, 6e14, "the charge stays until withdrawn");
    }

    function test_WhenDynamicPriceSurcharged_SurchargeSplitProRata() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 4.32e15}(dynamicTerms, 0, true); // 1.2e12 per second
        _activate(id);
        vm.warp(T0 + 600);
        _stop(id);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, 4.32e15 - 7.2e14, "refund");
        assertEq(escrow.earningsOf(infraId, 0), 4.32e14, "infra 60% of 7.2e14");
        assertEq(escrow.earningsOf(softwareId, 0), 2.16e14, "software 30%");
        assertEq(escrow.creditOf(admin, 0), 7.2e13, "owner the rest");
    }

    function test_WhenDynamicPriceRanFullDuration_NoRefund() public {
        uint256 id = _active(dynamicTerms);
        vm.warp(T0 + 2 days);
        escrow.end(id);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, DYNAMIC_DEPOSIT, 0, false);
        _settle(id, 10_000);
        assertEq(customer.balance, before, "nothing back");
    }

    function test_WhenErc20DynamicPrice_ChargesTokens() public {
        uint256 id = _sign(usdTerms);
        _activate(id);
        vm.warp(T0 + 600);
        _stop(id);
        _settle(id, 10_000);
        assertEq(usd.balanceOf(customer), USD_MINTED - 60_000, "charged 600 x 100");
        assertEq(escrow.earningsOf(infraId, usdId), 36_000, "infra");
        assertEq(escrow.earningsOf(softwareId, usdId), 18_000, "software");
        assertEq(escrow.creditOf(admin, usdId), 6_000, "margin");
        assertEq(escrow.earningsOf(infraId, 0), 0, "no ETH earnings");
        assertEq(usd.balanceOf(address(escrow)), 60_000, "held");
    }

    // ---- settle: TimeLimited ---------------------------------------------------------------------

    function test_WhenSessionSettled_SecondsConsumedAndBackToIdle() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 61);
        _stop(id);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 6.1e13, 0, false);
        _settle(id, 10_000);

        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Idle, "idle: the next session");
        assertEq(a.duration, 539, "600 - 61 seconds left");
        assertEq(escrow.minutesAccountOf(id).charged, 6.1e13, "charged 6e13 x 61 / 60");
        assertEq(customer.balance, before, "no refund until close");
        assertEq(escrow.earningsOf(infraId, 0), 3.66e13, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), 1.83e13, "software");
        assertEq(escrow.creditOf(admin, 0), 6.1e12, "margin");
    }

    function test_WhenSessionBelow75Percent_NothingConsumed() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 300);
        _stop(id);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 5000, EVIDENCE, 0, 0, false);
        _settle(id, 5000);
        assertEq(escrow.agreementOf(id).duration, 600, "no seconds consumed");
        assertEq(escrow.minutesAccountOf(id).charged, 0, "nothing charged");
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        assertEq(escrow.earningsOf(infraId, 0), 0, "infra nothing");
    }

    function test_WhenSessionsUseEveryMinute_CloseRefundsNothing() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 61);
        _stop(id);
        _settle(id, 10_000);
        _start(id);
        _activate(id);
        vm.warp(block.timestamp + 5000);
        escrow.end(id);
        assertEq(escrow.agreementOf(id).endedAt, T0 + 61 + 539, "the last 539 seconds");
        _settle(id, 10_000);
        assertEq(escrow.agreementOf(id).duration, 0, "used up");
        assertEq(escrow.minutesAccountOf(id).charged, 6e14, "the whole deposit");

        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementClosed(id, 0, false);
        vm.prank(customer);
        escrow.close(id);
        assertEq(customer.balance, before, "nothing back");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "infra 60% of 6e14");
    }

    function test_WhenSessionChargeRoundsDown_CustomerFavoured() public {
        // 7 wei per minute: a 10-second session costs floor(70 / 60) = 1 wei.
        uint32 termsId = _customOffer(
            IOfferBook.Model.TimeLimited, 0, MAX_MINUTES_SECONDS, _two(infra, software), _amounts(4, 3), 0, 0
        );
        vm.prank(customer);
        uint256 id = escrow.buyMinutes{value: 7}(termsId, 0, false, 1);
        _start(id);
        _activate(id);
        vm.warp(T0 + 10);
        _stop(id);
        _settle(id, 10_000);
        assertEq(escrow.minutesAccountOf(id).charged, 1, "floor(7 x 10 / 60)");
        assertEq(escrow.creditOf(admin, 0), 1, "all dust to the owner");
        assertEq(escrow.agreementOf(id).duration, 50, "seconds left");
        uint256 before = customer.balance;
        vm.prank(customer);
        escrow.close(id);
        assertEq(customer.balance - before, 6, "the rest back");
    }

    // ---- settle: FlexiblePeriod ------------------------------------------------------------------

    function test_WhenFlexibleUsed_ChargesMinimumPlusSeconds() public {
        uint256 id = _activeFlexible(); // window [T0+100, T0+4100), deposit 5e15
        vm.warp(T0 + 400);
        _stop(id);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 1.3e15, 3.7e15, false);
        _settle(id, 10_000);
        assertEq(customer.balance - before, 3.7e15, "refund");
        assertEq(escrow.earningsOf(infraId, 0), 7.8e14, "infra 60% of 1.3e15");
        assertEq(escrow.earningsOf(softwareId, 0), 3.9e14, "software 30%");
        assertEq(escrow.creditOf(admin, 0), 1.3e14, "owner 10%");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenFlexibleBelow75Percent_RefundsEverythingInclMinimum() public {
        uint256 id = _activeFlexible();
        vm.warp(T0 + 400);
        _stop(id);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 7000, EVIDENCE, 0, 5e15, false);
        _settle(id, 7000);
        assertEq(customer.balance - before, 5e15, "minimum included");
        assertEq(address(escrow).balance, 0, "escrow empty");
        assertEq(escrow.earningsOf(infraId, 0), 0, "infra nothing");
    }

    function test_WhenFlexibleNeverStarted_SettleChargesMinimum() public {
        uint40 to = _now() + 4100;
        uint256 id = _reserve(_now() + 100, to);
        vm.warp(to);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, MINIMUM_CHARGE, 4e15, false);
        _settle(id, 10_000);
        assertEq(customer.balance - before, 4e15, "everything but the minimum");
        assertEq(escrow.earningsOf(infraId, 0), 6e14, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), 3e14, "software");
        assertEq(escrow.creditOf(admin, 0), 1e14, "owner");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenFlexibleSurchargedNeverStarted_ChargesSurchargedMinimum() public {
        uint40 to = _now() + 1000;
        vm.prank(customer);
        uint256 id = escrow.reserve{value: 1.2e15 + 1000 * 1.2e12}(flexibleTerms, 0, true, _now(), to);
        vm.warp(to);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, 1000 * 1.2e12, "the seconds back");
        assertEq(escrow.earningsOf(infraId, 0), 7.2e14, "infra");
    }

    // ---- settleOverdue ---------------------------------------------------------------------------

    function test_RevertWhen_SettleOverdueAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        escrow.settleOverdue(1);
    }

    function test_RevertWhen_SettleOverdueActive() public {
        uint256 id = _active(fixedTerms);
        vm.warp(T0 + 30 days);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueRequested() public {
        uint256 id = _sign(fixedTerms);
        vm.warp(T0 + 30 days);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueIdleSession() public {
        uint256 id = _buyMinutes(10);
        vm.warp(T0 + 30 days);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueSettled() public {
        uint256 id = _ended(fixedTerms, 10);
        _settle(id, 10_000);
        vm.warp(T0 + 30 days);
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueWithinSettlementWindow() public {
        uint256 id = _ended(dynamicTerms, 600);
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, T0 + 600 + SETTLEMENT_WINDOW)
        );
        vm.prank(stranger);
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueUnusedWindowNotOver() public {
        uint40 to = _now() + 4100;
        uint256 id = _reserve(_now() + 100, to);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WindowOpen.selector, id, to));
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_SettleOverdueUnusedWindowWithinSettlementWindow() public {
        uint40 to = _now() + 4100;
        uint256 id = _reserve(_now() + 100, to);
        vm.warp(to + SETTLEMENT_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, to + SETTLEMENT_WINDOW));
        escrow.settleOverdue(id);
    }

    function test_WhenOverdue_AnyoneSettlesAtFullAvailability() public {
        uint256 id = _ended(dynamicTerms, 600);
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW + 1);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, bytes32(0), 6e14, 3e15, false);
        vm.prank(stranger);
        escrow.settleOverdue(id);
        assertEq(customer.balance - before, 3e15, "refund");
        assertEq(stranger.balance, 0, "nothing to the caller");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "infra");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenSessionOverdue_SettledAndBackToIdle() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 120);
        _stop(id);
        vm.warp(T0 + 120 + SETTLEMENT_WINDOW + 1);
        escrow.settleOverdue(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        assertEq(escrow.minutesAccountOf(id).charged, 1.2e14, "two minutes");
        assertEq(escrow.agreementOf(id).duration, 480, "seconds left");
    }

    function test_WhenUnusedWindowOverdue_ChargesMinimum() public {
        uint40 to = _now() + 4100;
        uint256 id = _reserve(_now() + 100, to);
        vm.warp(to + SETTLEMENT_WINDOW + 1);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, bytes32(0), MINIMUM_CHARGE, 4e15, false);
        escrow.settleOverdue(id);
        assertEq(customer.balance - before, 4e15, "refund");
    }

    // ---- close -----------------------------------------------------------------------------------

    function test_RevertWhen_CloseAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        vm.prank(customer);
        escrow.close(1);
    }

    function test_RevertWhen_CloseCallerNotCustomer() public {
        uint256 id = _buyMinutes(10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, operator));
        vm.prank(operator);
        escrow.close(id);
    }

    function test_RevertWhen_CloseFixedPriceAgreement() public {
        uint256 id = _ended(fixedTerms, 10);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, fixedTerms, IOfferBook.Model.FixedPrice)
        );
        vm.prank(customer);
        escrow.close(id);
    }

    function test_RevertWhen_CloseFlexibleAgreement() public {
        uint256 id = _reserve(_now(), _now() + 100);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, flexibleTerms, IOfferBook.Model.FlexiblePeriod)
        );
        vm.prank(customer);
        escrow.close(id);
    }

    function test_RevertWhen_CloseDuringSession() public {
        uint256 id = _activeMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        vm.prank(customer);
        escrow.close(id);
    }

    function test_RevertWhen_CloseSessionEndedNotSettled() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 60);
        _stop(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Ended);
        vm.prank(customer);
        escrow.close(id);
    }

    function test_RevertWhen_CloseTwice() public {
        uint256 id = _buyMinutes(10);
        vm.prank(customer);
        escrow.close(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        vm.prank(customer);
        escrow.close(id);
    }

    function test_WhenUnused_CloseRefundsEverything() public {
        uint256 id = _buyMinutes(10);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementClosed(id, 6e14, false);
        vm.prank(customer);
        escrow.close(id);
        assertEq(customer.balance - before, 6e14, "everything back");
        assertEq(address(escrow).balance, 0, "escrow empty");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenPartlyUsed_CloseRefundsTheRest() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T0 + 61);
        _stop(id);
        _settle(id, 10_000);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementClosed(id, 6e14 - 6.1e13, false);
        vm.prank(customer);
        escrow.close(id);
        assertEq(customer.balance - before, 5.39e14, "unused minutes back");
        assertEq(address(escrow).balance, 6.1e13, "only the charge remains");
    }
}
