// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest} from "../Base.t.sol";

contract ActivateTest is BaseTest {
    function test_RevertWhen_CallerIsNotOperator() external {
        uint256 id = _sign();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, escrow.OPERATOR_ROLE())
        );
        vm.prank(owner);
        escrow.activate(id);
    }

    function test_RevertWhen_AgreementIsUnknown() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 3));
        vm.prank(operator);
        escrow.activate(3);
    }

    function test_RevertWhen_AlreadyActive() external {
        uint256 id = _signAndActivate();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Active));
        vm.prank(operator);
        escrow.activate(id);
    }

    function test_WhenAtTheWindowsLastSecond_ItActivates() external {
        uint256 id = _sign();
        vm.warp(T0 + ACTIVATION_WINDOW);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementActivated(id, T0 + ACTIVATION_WINDOW);
        vm.prank(operator);
        escrow.activate(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Active, "active");
        assertEq(escrow.getAgreement(id).startedAt, T0 + ACTIVATION_WINDOW, "the clock starts at activation");
    }

    function test_RevertWhen_TheWindowHasClosed() external {
        uint256 id = _sign();
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_ActivationWindowClosed.selector, id, T0 + ACTIVATION_WINDOW)
        );
        vm.prank(operator);
        escrow.activate(id);
    }
}

contract DeclineTest is BaseTest {
    function test_RevertWhen_CallerIsNotOperator() external {
        uint256 id = _sign();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, customer, escrow.OPERATOR_ROLE())
        );
        vm.prank(customer);
        escrow.decline(id);
    }

    function test_RevertWhen_AlreadyActive() external {
        uint256 id = _signAndActivate();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Active));
        vm.prank(operator);
        escrow.decline(id);
    }

    function test_WhenDeclined_TheCustomerGetsEverythingBack() external {
        uint256 id = _sign();
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementRefunded(id, IDynamicPriceEscrow.RefundReason.DeclinedByOperator, DEPOSIT, false);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Refunded, "refunded");
        assertEq(customer.balance, 100 ether, "whole deposit back");
        assertEq(address(escrow).balance, 0, "nothing left");
    }
}

contract ReclaimTest is BaseTest {
    function test_RevertWhen_TheWindowIsStillOpen() external {
        uint256 id = _sign();
        vm.warp(T0 + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_ActivationWindowOpen.selector, id, T0 + ACTIVATION_WINDOW));
        escrow.reclaim(id);
    }

    function test_RevertWhen_AlreadyActive() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Active));
        escrow.reclaim(id);
    }

    function test_WhenTheWindowHasClosed_AnyoneReturnsTheDepositToTheCustomer() external {
        uint256 id = _sign();
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementRefunded(id, IDynamicPriceEscrow.RefundReason.ActivationTimedOut, DEPOSIT, false);
        vm.prank(stranger);
        escrow.reclaim(id);
        assertEq(customer.balance, 100 ether, "deposit back to the customer");
        assertEq(stranger.balance, 0, "the caller gets nothing");
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Refunded));
        escrow.reclaim(id);
    }
}
