// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract ActivateTest is UnitBase {
    // ---- start -----------------------------------------------------------------------------------

    function test_RevertWhen_StartAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        vm.prank(customer);
        escrow.start(1);
    }

    function test_RevertWhen_StartCallerNotCustomer() public {
        uint256 id = _buyMinutes(10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, operator));
        vm.prank(operator);
        escrow.start(id);
    }

    function test_RevertWhen_StartFixedPriceAgreement() public {
        uint256 id = _sign(fixedTerms);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartSessionAlreadyRequested() public {
        uint256 id = _buyMinutes(10);
        _start(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartSessionRunning() public {
        uint256 id = _activeMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartNoMinutesLeft() public {
        uint256 id = _activeMinutes(1);
        vm.warp(block.timestamp + 60);
        escrow.end(id);
        _settle(id, 10_000);
        assertEq(escrow.agreementOf(id).duration, 0, "used up");
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoMinutesLeft.selector, id));
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartBeforeWindow() public {
        uint40 from = _now() + 100;
        uint256 id = _reserve(from, from + 1000);
        vm.warp(from - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OutsideWindow.selector, id, from, from + 1000));
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartAtWindowEnd() public {
        uint40 from = _now() + 100;
        uint256 id = _reserve(from, from + 1000);
        vm.warp(from + 1000);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OutsideWindow.selector, id, from, from + 1000));
        vm.prank(customer);
        escrow.start(id);
    }

    function test_RevertWhen_StartFlexibleAfterItRan() public {
        uint256 id = _activeFlexible();
        _stop(id);
        _settle(id, 10_000);
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        vm.prank(customer);
        escrow.start(id);
    }

    function test_WhenMinutesLeft_StartRequested() public {
        uint256 id = _buyMinutes(10);
        vm.warp(T0 + 500);
        vm.expectEmit();
        emit IConferenceEscrow.StartRequested(id);
        _start(id);
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Requested, "requested");
        assertEq(a.startedAt, T0 + 500, "request time");
    }

    function test_WhenInsideWindow_StartRequested() public {
        uint40 from = _now() + 100;
        uint256 id = _reserve(from, from + 1000);
        vm.warp(from);
        vm.expectEmit();
        emit IConferenceEscrow.StartRequested(id);
        _start(id);
        assertEq(escrow.agreementOf(id).status, IConferenceEscrow.Status.Requested, "requested");
        assertEq(escrow.agreementOf(id).startedAt, from, "request time");
    }

    // ---- activate: requirements ------------------------------------------------------------------

    function test_RevertWhen_ActivateCallerNotOperator() public {
        uint256 id = _sign(fixedTerms);
        _expectUnauthorized(customer, OPERATOR_ROLE);
        vm.prank(customer);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivateCallerAdmin() public {
        uint256 id = _sign(fixedTerms);
        _expectUnauthorized(admin, OPERATOR_ROLE);
        vm.prank(admin);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivateAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 5));
        vm.prank(operator);
        escrow.activate(5, EU);
    }

    function test_RevertWhen_ActivateIdleSession() public {
        uint256 id = _buyMinutes(10);
        _expectWrongStatus(id, IConferenceEscrow.Status.Idle);
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivateTwice() public {
        uint256 id = _active(fixedTerms);
        _expectWrongStatus(id, IConferenceEscrow.Status.Active);
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivateRefunded() public {
        uint256 id = _sign(fixedTerms);
        _stop(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Refunded);
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivationWindowClosed() public {
        uint256 id = _sign(fixedTerms);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_ActivationWindowClosed.selector, id, T0 + ACTIVATION_WINDOW)
        );
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_ActivationWindowOfSessionClosed() public {
        uint256 id = _buyMinutes(10);
        vm.warp(T0 + 5000);
        _start(id); // the window counts from the start request, not from buying
        vm.warp(T0 + 5000 + ACTIVATION_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_ActivationWindowClosed.selector, id, T0 + 5000 + ACTIVATION_WINDOW)
        );
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function test_RevertWhen_RegionExcludedByConstraints() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.11 ether}(fixedTerms, EU_ONLY, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_RegionNotAllowed.selector, id, US, EU_ONLY));
        vm.prank(operator);
        escrow.activate(id, US);
    }

    function test_RevertWhen_RegionNotServedByTerms() public {
        uint256 id = _sign(fixedTerms);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_RegionNotAllowed.selector, id, ASIA, EU_US));
        vm.prank(operator);
        escrow.activate(id, ASIA);
    }

    function test_RevertWhen_RegionOutOfRange() public {
        uint256 id = _sign(fixedTerms);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_RegionNotAllowed.selector, id, uint8(32), EU_US));
        vm.prank(operator);
        escrow.activate(id, 32);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_RegionNotAllowed.selector, id, uint8(255), EU_US));
        vm.prank(operator);
        escrow.activate(id, 255);
    }

    function test_RevertWhen_ActivateAfterFlexibleWindowEnded() public {
        uint40 from = _now() + 100;
        uint40 to = from + 1000;
        uint256 id = _reserve(from, to);
        vm.warp(to - 10);
        _start(id);
        vm.warp(to); // still inside the activation window, but the reserved window is over
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OutsideWindow.selector, id, from, to));
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    // ---- activate: outcomes ----------------------------------------------------------------------

    function test_WhenRequested_Activates() public {
        uint256 id = _sign(fixedTerms);
        vm.warp(T0 + 60);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementActivated(id, US, T0 + 60 + MAX_DURATION);
        vm.prank(operator);
        escrow.activate(id, US);
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Active, "active");
        assertEq(a.region, US, "region");
        assertEq(a.startedAt, T0 + 60, "started at activation");
        assertEq(a.duration, MAX_DURATION, "duration");
    }

    function test_WhenAtActivationDeadline_Activates() public {
        uint256 id = _sign(dynamicTerms);
        vm.warp(T0 + ACTIVATION_WINDOW);
        _activate(id);
        assertEq(escrow.agreementOf(id).status, IConferenceEscrow.Status.Active, "active");
    }

    function test_WhenRegionAllowedByConstraints_Activates() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.11 ether}(fixedTerms, 2, false); // US only
        vm.prank(operator);
        escrow.activate(id, US);
        assertEq(escrow.agreementOf(id).region, US, "US");
    }

    function test_WhenSessionActivated_EndsWhenMinutesRunOut() public {
        uint256 id = _buyMinutes(10);
        _start(id);
        vm.warp(T0 + 30);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementActivated(id, EU, T0 + 30 + 600);
        _activate(id);
        assertEq(escrow.agreementOf(id).startedAt, T0 + 30, "startedAt");
    }

    function test_WhenFlexibleActivatedLate_RunsUntilWindowEnds() public {
        uint40 from = _now() + 100;
        uint40 to = from + 4000;
        uint256 id = _reserve(from, to);
        vm.warp(from + 1000);
        _start(id);
        vm.warp(from + 1500);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementActivated(id, EU, to);
        _activate(id);
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.duration, 2500, "until the window closes");
        assertEq(a.startedAt, from + 1500, "startedAt");
        assertEq(escrow.depositOf(id), MINIMUM_CHARGE + 4000 * SECOND_PRICE, "deposit unchanged");
    }
}
