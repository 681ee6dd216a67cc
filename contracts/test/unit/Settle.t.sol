// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest, GasGuzzlingCustomer, RefusingCustomer} from "../Base.t.sol";

contract SettleTest is BaseTest {
    function test_RevertWhen_CallerIsNotOperator() external {
        uint256 id = _ended(600);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, customer, escrow.OPERATOR_ROLE())
        );
        vm.prank(customer);
        escrow.settle(id, 10_000);
    }

    function test_RevertWhen_AvailabilityIsAbove10000() external {
        uint256 id = _ended(600);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAvailability.selector, 10_001));
        vm.prank(operator);
        escrow.settle(id, 10_001);
    }

    function test_RevertWhen_NotEnded() external {
        uint256 id = _signAndActivate();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Active));
        vm.prank(operator);
        escrow.settle(id, 10_000);
    }

    function test_WhenAvailabilityIs7500_TheUsedTimeIsCharged() external {
        uint256 id = _ended(600);
        uint256 charge = uint256(PRICE) * 600;
        vm.expectEmit();
        emit IDynamicPriceEscrow.Credited(provider, charge);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementSettled(id, 7500, charge, DEPOSIT - charge, false);
        vm.prank(operator);
        escrow.settle(id, 7500);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Settled, "settled");
        assertEq(escrow.getAgreement(id).availabilityBps, 7500, "availability stored");
        assertEq(escrow.withdrawable(provider), charge, "provider credited the charge");
        assertEq(customer.balance, 100 ether - charge, "customer refunded the rest");
        assertEq(address(escrow).balance, charge, "the escrow keeps only the provider's income");
    }

    function test_WhenAvailabilityIs7499_EverythingIsRefunded() external {
        uint256 id = _ended(600);
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementSettled(id, 7499, 0, DEPOSIT, false);
        vm.prank(operator);
        escrow.settle(id, 7499);
        assertEq(escrow.withdrawable(provider), 0, "provider gets nothing");
        assertEq(customer.balance, 100 ether, "whole deposit back");
    }

    function test_RevertWhen_SettledTwice() external {
        uint256 id = _ended(600);
        vm.startPrank(operator);
        escrow.settle(id, 10_000);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Settled));
        escrow.settle(id, 10_000);
        vm.stopPrank();
    }

    function test_WhenTheCustomerRefusesTheRefund_ItIsCreditedAndWithdrawableLater() external {
        RefusingCustomer refusing = new RefusingCustomer();
        uint256 id = refusing.sign{value: DEPOSIT}(escrow, offerId);
        vm.prank(operator);
        escrow.activate(id);
        vm.warp(T0 + 100);
        refusing.stop(escrow, id);

        uint256 refund = DEPOSIT - uint256(PRICE) * 100;
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementSettled(id, 10_000, uint256(PRICE) * 100, refund, true);
        vm.prank(operator);
        escrow.settle(id, 10_000);
        assertEq(escrow.withdrawable(address(refusing)), refund, "refund credited");

        refusing.setAccept(true);
        refusing.withdraw(escrow);
        assertEq(address(refusing).balance, refund, "refund withdrawn");
        assertEq(escrow.withdrawable(address(refusing)), 0, "ledger cleared");
    }

    function test_WhenTheCustomerBurnsAllGas_TheSettlementStillSucceeds() external {
        GasGuzzlingCustomer guzzler = new GasGuzzlingCustomer();
        uint256 id = guzzler.sign{value: DEPOSIT}(escrow, offerId);
        vm.prank(operator);
        escrow.activate(id);
        vm.warp(T0 + 100);
        guzzler.stop(escrow, id);
        vm.prank(operator);
        escrow.settle(id, 10_000);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Settled, "settled despite the customer");
        assertEq(escrow.withdrawable(address(guzzler)), DEPOSIT - uint256(PRICE) * 100, "refund credited");
    }
}

contract SettleOverdueTest is BaseTest {
    function test_RevertWhen_TheSettlementWindowIsOpen() external {
        uint256 id = _ended(600);
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, T0 + 600 + SETTLEMENT_WINDOW)
        );
        escrow.settleOverdue(id);
    }

    function test_RevertWhen_NotEnded() external {
        uint256 id = _signAndActivate();
        vm.warp(T0 + 10 days);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, IDynamicPriceEscrow.Status.Active));
        escrow.settleOverdue(id);
    }

    function test_WhenTheOperatorIsLate_AnyoneSettlesAtFullAvailability() external {
        uint256 id = _ended(600);
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW + 1);
        uint256 charge = uint256(PRICE) * 600;
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementSettled(id, 10_000, charge, DEPOSIT - charge, false);
        vm.prank(stranger);
        escrow.settleOverdue(id);
        assertEq(escrow.withdrawable(provider), charge, "provider credited");
        assertEq(customer.balance, 100 ether - charge, "customer refunded");
    }
}
