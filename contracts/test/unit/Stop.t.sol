// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest} from "../Base.t.sol";

contract StopTest is BaseTest {
    function test_RevertWhen_CallerIsNotTheCustomer() external {
        uint256 id = _signAndActivate();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, operator));
        vm.prank(operator);
        escrow.stop(id);
    }

    function test_WhenSignedButNotStarted_TheCustomerCancelsForAFullRefund() external {
        uint256 id = _sign();
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementRefunded(id, IDynamicPriceEscrow.RefundReason.CancelledByCustomer, DEPOSIT, false);
        vm.prank(customer);
        escrow.stop(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Refunded, "refunded");
        assertEq(customer.balance, 100 ether, "whole deposit back");
    }

    function test_WhenActive_ItEndsNow() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + 600);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementEnded(id, T0 + 600, customer);
        vm.prank(customer);
        escrow.stop(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Ended, "ended");
        assertEq(escrow.getAgreement(id).endedAt, T0 + 600, "ended now");
        assertEq(address(escrow).balance, DEPOSIT, "still locked until settlement");
    }

    function test_WhenStoppedAfterTheExpiry_TheEndIsCappedAtTheMaximum() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + MAX_DURATION + 500);
        vm.prank(customer);
        escrow.stop(id);
        assertEq(escrow.getAgreement(id).endedAt, T0 + MAX_DURATION, "capped");
    }

    function test_RevertWhen_AlreadyEnded() external {
        uint256 id = _ended(10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Ended));
        vm.prank(customer);
        escrow.stop(id);
    }
}

contract EndTest is BaseTest {
    function test_RevertWhen_NotExpiredYet() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + MAX_DURATION - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotExpired.selector, id, T0 + MAX_DURATION));
        escrow.end(id);
    }

    function test_RevertWhen_NotActive() external {
        uint256 id = _sign();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Signed));
        escrow.end(id);
    }

    function test_WhenExpired_AnyoneEndsItAtTheMaximum() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + MAX_DURATION + 1 days);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementEnded(id, T0 + MAX_DURATION, stranger);
        vm.prank(stranger);
        escrow.end(id);
        assertEq(escrow.getAgreement(id).endedAt, T0 + MAX_DURATION, "ended at start + maximum");
    }

    function test_WhenExactlyAtTheExpiry_ItEnds() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + MAX_DURATION);
        escrow.end(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Ended, "ended");
    }
}
