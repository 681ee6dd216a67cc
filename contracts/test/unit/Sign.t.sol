// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest} from "../Base.t.sol";

contract SignTest is BaseTest {
    function test_RevertWhen_OfferIsUnknown() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownOffer.selector, 2));
        vm.prank(customer);
        escrow.sign{value: DEPOSIT}(2);
    }

    function test_RevertWhen_DepositIsTooSmallOrTooLarge() external {
        vm.startPrank(customer);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, DEPOSIT, DEPOSIT - 1));
        escrow.sign{value: DEPOSIT - 1}(offerId);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, DEPOSIT, DEPOSIT + 1));
        escrow.sign{value: DEPOSIT + 1}(offerId);
        vm.stopPrank();
    }

    function test_WhenPaidExactly_TheAgreementIsSignedAndTheDepositLocked() external {
        vm.expectEmit();
        emit IDynamicPriceEscrow.AgreementSigned(1, offerId, customer, DEPOSIT);
        uint256 id = _sign();
        assertEq(id, 1, "ids count from 1");
        assertEq(escrow.agreementCount(), 1, "count");
        IDynamicPriceEscrow.Agreement memory a = escrow.getAgreement(id);
        assertEq(a.customer, customer, "customer");
        assertEq(a.offerId, offerId, "offer");
        assertEq(a.signedAt, T0, "signed at");
        assertEq(a.status, IDynamicPriceEscrow.Status.Signed, "status");
        assertEq(a.startedAt, 0, "not started");
        assertEq(escrow.depositOf(id), DEPOSIT, "deposit");
        assertEq(address(escrow).balance, DEPOSIT, "locked");
        assertEq(customer.balance, 100 ether - DEPOSIT, "customer paid the deposit");
    }

    function test_RevertWhen_AgreementIsUnknown() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        escrow.getAgreement(1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 0));
        escrow.depositOf(0);
    }
}
