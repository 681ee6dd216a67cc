// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DynamicPriceEscrow} from "../../src/DynamicPriceEscrow.sol";
import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest, RefusingCustomer, ReentrantProvider} from "../Base.t.sol";

contract WithdrawTest is BaseTest {
    function test_RevertWhen_NothingToWithdraw() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, provider));
        vm.prank(provider);
        escrow.withdraw();
    }

    function test_WhenTheProviderWithdraws_ItGetsExactlyItsIncome() external {
        uint256 id = _ended(600);
        vm.prank(operator);
        escrow.settle(id, 10_000);
        uint256 charge = uint256(PRICE) * 600;
        vm.expectEmit();
        emit IDynamicPriceEscrow.Withdrawn(provider, charge);
        vm.prank(provider);
        escrow.withdraw();
        assertEq(provider.balance, charge, "income received");
        assertEq(escrow.withdrawable(provider), 0, "ledger cleared");
        assertEq(address(escrow).balance, 0, "nothing left in escrow");
    }

    function test_RevertWhen_TheTransferFails_AndTheBalanceIsKept() external {
        RefusingCustomer refusing = new RefusingCustomer();
        uint256 id = refusing.sign{value: DEPOSIT}(escrow, offerId);
        vm.prank(operator);
        escrow.decline(id);
        assertEq(escrow.withdrawable(address(refusing)), DEPOSIT, "refund credited");

        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TransferFailed.selector, address(refusing), DEPOSIT));
        refusing.withdraw(escrow);
        assertEq(escrow.withdrawable(address(refusing)), DEPOSIT, "balance kept after a failed withdrawal");
    }

    function test_RevertWhen_TheRecipientReenters() external {
        ReentrantProvider attacker = new ReentrantProvider();
        attacker.setEscrow(escrow);
        vm.prank(owner);
        uint256 offer = escrow.publishOffer(address(attacker), PRICE, MAX_DURATION);
        vm.prank(customer);
        uint256 id = escrow.sign{value: DEPOSIT}(offer);
        vm.prank(operator);
        escrow.activate(id);
        vm.warp(T0 + 600);
        vm.prank(customer);
        escrow.stop(id);
        vm.prank(operator);
        escrow.settle(id, 10_000);

        // The nested withdraw finds the guard locked; the whole withdrawal reverts and nothing moves.
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TransferFailed.selector, address(attacker), uint256(PRICE) * 600));
        attacker.withdraw();
        assertEq(escrow.withdrawable(address(attacker)), uint256(PRICE) * 600, "income still owed");
        assertEq(address(escrow).balance, uint256(PRICE) * 600, "nothing left the escrow");
    }
}
