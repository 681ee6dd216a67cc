// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";

/// @notice The FlexiblePeriod minimum and the starts near the window's end (review, finding 1). A start is
/// owed an activation when it leaves the operator its whole ACTIVATION_WINDOW before the window ends
/// (startedAt + ACTIVATION_WINDOW < to); a later start is served if the operator can, and otherwise lapses
/// with the window: the minimum stays charged. The minimum comes back only when the service was at fault:
/// the operator declined, or let an owed activation time out.
contract FlexibleStartTest is UnitBase {
    uint40 internal constant LENGTH = 2 * ACTIVATION_WINDOW;
    uint256 internal constant DEPOSIT = MINIMUM_CHARGE + LENGTH * SECOND_PRICE;

    uint40 internal from;
    uint40 internal to;
    uint256 internal id;

    function setUp() public override {
        super.setUp();
        from = _now() + 100;
        to = from + LENGTH;
        id = _reserve(from, to);
    }

    /// Starts at `at` (inside the window).
    function _startAt(uint256 at) internal {
        vm.warp(at);
        _start(id);
    }

    // ---- the exploit: a reservation never used, started in its last second -----------------------

    /// Regression: the customer starts in the window's last second; the operator cannot activate after `to`;
    /// the timed-out start keeps the reservation (no refund), and the window settles with its minimum.
    function test_WhenStartedInLastSecond_ReclaimKeepsMinimum() public {
        _startAt(to - 1);
        vm.warp(to);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OutsideWindow.selector, id, from, to));
        vm.prank(operator);
        escrow.activate(id, EU);

        vm.warp(to - 1 + ACTIVATION_WINDOW + 1);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.ActivationTimedOut, 0, false);
        vm.prank(customer);
        escrow.reclaim(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "the reservation stays");
        assertEq(customer.balance, before, "nothing back: the minimum is not refundable");

        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, MINIMUM_CHARGE, DEPOSIT - MINIMUM_CHARGE, false);
        _settle(id, 10_000);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE, "all but the minimum");
        assertEq(escrow.earningsOf(infraId, 0), uint256(MINIMUM_CHARGE) * SECOND_INFRA / SECOND_PRICE, "providers paid");
    }

    /// Regression: the operator need not wait for a reclaim: once the window is over it settles the lapsed
    /// start like a window that passed unused.
    function test_WhenStartedInLastSecond_SettleAfterWindowChargesMinimum() public {
        _startAt(to - 1);
        vm.warp(to);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE, "all but the minimum");
    }

    function test_WhenLateStartLapsed_AnyoneSettlesOverdue() public {
        _startAt(to - 1);
        vm.warp(to + SETTLEMENT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, uint256(to) + SETTLEMENT_WINDOW)
        );
        escrow.settleOverdue(id);
        vm.warp(to + SETTLEMENT_WINDOW + 1);
        uint256 before = customer.balance;
        vm.prank(stranger);
        escrow.settleOverdue(id);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE, "all but the minimum");
    }

    function test_WhenLateStartLapsedBelow75Percent_RefundsEverything() public {
        _startAt(to - 1);
        vm.warp(to);
        uint256 before = customer.balance;
        _settle(id, 7499);
        assertEq(customer.balance - before, DEPOSIT, "the service was not available: everything back");
    }

    function test_RevertWhen_SettleLateStartBeforeWindowEnds() public {
        _startAt(to - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WindowOpen.selector, id, to));
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    /// The start after `to` is refused: the window is over; it settles with its minimum.
    function test_RevertWhen_StartAfterWindowEnd() public {
        vm.warp(to + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OutsideWindow.selector, id, from, to));
        vm.prank(customer);
        escrow.start(id);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE, "all but the minimum");
    }

    // ---- where "owed" begins ---------------------------------------------------------------------

    function test_WhenStartLeavesWholeActivationWindow_TimeoutRefundsEverything() public {
        _startAt(to - ACTIVATION_WINDOW - 1); // deadline to - 1: inside the window
        vm.warp(to);
        uint256 before = customer.balance;
        vm.prank(stranger);
        escrow.reclaim(id);
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
        assertEq(customer.balance - before, DEPOSIT, "the service was at fault: minimum included");
    }

    function test_WhenStartLeavesLessThanActivationWindow_TimeoutKeepsMinimum() public {
        _startAt(to - ACTIVATION_WINDOW); // deadline exactly at `to`: the operator could not use all of it
        vm.warp(to + 1);
        vm.prank(stranger);
        escrow.reclaim(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "lapsed");
    }

    function test_RevertWhen_SettleOwedStartNotActivated() public {
        _startAt(from);
        vm.warp(to);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        vm.prank(operator);
        escrow.settle(id, 10_000, bytes32(0), "");
    }

    // ---- the honest paths ------------------------------------------------------------------------

    function test_WhenLateStartActivated_ChargesMinimumPlusUse() public {
        _startAt(to - 100);
        vm.warp(to - 90);
        _activate(id);
        assertEq(escrow.agreementOf(id).duration, 90, "until the window closes");
        vm.warp(to + 50);
        escrow.end(id);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE - 90 * SECOND_PRICE, "minimum + 90 s");
    }

    function test_WhenLateStartDeclined_RefundsEverything() public {
        // The operator says it cannot serve: the service was not ready, whenever the start came.
        _startAt(to - 1);
        uint256 before = customer.balance;
        vm.prank(operator);
        escrow.decline(id);
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "refunded");
        assertEq(customer.balance - before, DEPOSIT, "minimum included");
    }

    function test_WhenLateStartCalledOffByCustomer_MinimumKept() public {
        _startAt(to - 1);
        _stop(id);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        vm.warp(to);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE, "all but the minimum");
    }

    function test_WhenStartedEarlyAndUsed_ChargesMinimumPlusUse() public {
        _startAt(from);
        _activate(id);
        vm.warp(from + 600);
        _stop(id);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DEPOSIT - MINIMUM_CHARGE - 600 * SECOND_PRICE, "minimum + 600 s");
    }
}
