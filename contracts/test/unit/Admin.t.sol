// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {ConferenceEscrow} from "../../src/ConferenceEscrow.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {MockStablecoin} from "../mocks/Tokens.sol";
import {EscrowAnnex} from "../../src/EscrowAnnex.sol";

contract AdminTest is UnitBase {
    // ---- constructor -----------------------------------------------------------------------------

    function test_RevertWhen_DeployedWithZeroAdmin() public {
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(address(0), operator, registry, 1, 1, 1, annex);
    }

    function test_RevertWhen_DeployedWithZeroOperator() public {
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, address(0), registry, 1, 1, 1, annex);
    }

    function test_RevertWhen_DeployedWithZeroRegistry() public {
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, operator, IProviderRegistry(address(0)), 1, 1, 1, annex);
    }

    function test_RevertWhen_DeployedWithZeroWindows() public {
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, operator, registry, 0, 1, 1, annex);
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, operator, registry, 1, 0, 1, annex);
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, operator, registry, 1, 1, 0, annex);
    }

    function test_RevertWhen_DeployedWithoutAnnex() public {
        vm.expectRevert(Errors.Escrow_InvalidConfiguration.selector);
        new ConferenceEscrow(admin, operator, registry, 1, 1, 1, EscrowAnnex(address(0)));
    }

    function test_WhenDeployed_RolesAndWindowsSet() public view {
        assertTrue(escrow.hasRole(DEFAULT_ADMIN_ROLE, admin), "admin");
        assertTrue(escrow.hasRole(OFFER_ADMIN_ROLE, admin), "offer admin");
        assertTrue(escrow.hasRole(OPERATOR_ROLE, operator), "operator");
        assertTrue(!escrow.hasRole(OPERATOR_ROLE, admin), "admin is not operator");
        assertTrue(!escrow.hasRole(DEFAULT_ADMIN_ROLE, operator), "operator is not admin");
        assertEq(escrow.ACTIVATION_WINDOW(), ACTIVATION_WINDOW, "activation window");
        assertEq(escrow.SETTLEMENT_WINDOW(), SETTLEMENT_WINDOW, "settlement window");
        assertEq(book.VOTING_PERIOD(), VOTING_PERIOD, "voting period");
        assertEq(address(book.ESCROW()), address(escrow), "book's escrow");
        assertEq(escrow.tokenOf(0), address(0), "token 0 is ETH");
    }

    // ---- addToken --------------------------------------------------------------------------------

    function test_RevertWhen_AddTokenCallerNotAdmin() public {
        _expectUnauthorized(operator, DEFAULT_ADMIN_ROLE);
        vm.prank(operator);
        escrow.addToken(address(usd));
    }

    function test_RevertWhen_AddTokenWithoutCode() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidToken.selector, stranger));
        vm.prank(admin);
        escrow.addToken(stranger);
    }

    function test_RevertWhen_AddToken256th() public {
        MockStablecoin token = new MockStablecoin();
        vm.startPrank(admin);
        uint8 last;
        for (uint256 i; i < 254; ++i) {
            last = escrow.addToken(address(token));
        }
        assertEq(last, 255, "the 255th token");
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidToken.selector, address(token)));
        escrow.addToken(address(token));
        vm.stopPrank();
    }

    function test_WhenAdmin_AddsToken() public {
        MockStablecoin token = new MockStablecoin();
        vm.expectEmit();
        emit IConferenceEscrow.TokenAdded(2, address(token));
        vm.prank(admin);
        uint8 id = escrow.addToken(address(token));
        assertEq(id, 2, "next id");
        assertEq(escrow.tokenOf(2), address(token), "tokenOf");
        // Offers may now be drafted in it.
        vm.prank(admin);
        book.createOffer(_params(IOfferBook.Model.FixedPrice, 2, MAX_DURATION, 1, 0), _ids(infraId));
    }

    // ---- setPaused -------------------------------------------------------------------------------

    function test_RevertWhen_SetPausedCallerNotAdmin() public {
        _expectUnauthorized(operator, DEFAULT_ADMIN_ROLE);
        vm.prank(operator);
        escrow.setPaused(true);
    }

    function test_WhenAdmin_PausesAndUnpauses() public {
        vm.expectEmit();
        emit IConferenceEscrow.PausedSet(true);
        vm.prank(admin);
        escrow.setPaused(true);
        assertTrue(escrow.paused(), "paused");

        vm.expectEmit();
        emit IConferenceEscrow.PausedSet(false);
        vm.prank(admin);
        escrow.setPaused(false);
        assertTrue(!escrow.paused(), "unpaused");
        _sign(fixedTerms);
    }

    function test_WhenPaused_SigningBlocked() public {
        _pause();
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, false);
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.buyMinutes{value: MINUTE_PRICE}(minutesTerms, 0, false, 1);
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.reserve{value: MINIMUM_CHARGE + 100 * SECOND_PRICE}(flexibleTerms, 0, false, _now(), _now() + 100);
    }

    function test_WhenPaused_ConferencesRunStopAndSettle() public {
        uint256 fixedId = _sign(fixedTerms);
        uint256 dynamicId = _sign(dynamicTerms);
        _pause();
        _activate(fixedId);
        _activate(dynamicId);
        vm.warp(T0 + 600);
        _stop(dynamicId);
        vm.warp(T0 + MAX_DURATION);
        escrow.end(fixedId);
        uint256 before = customer.balance;
        _settle(dynamicId, 10_000);
        _settle(fixedId, 10_000);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 6e14, "refund");
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA + 3.6e14, "infra");
    }

    function test_WhenPaused_SignedStopAndOverdueSettlementWork() public {
        uint256 a = _active(dynamicTerms);
        uint256 b = _active(dynamicTerms);
        _pause();
        vm.warp(T0 + 100);
        uint40 t = uint40(T0);
        bytes memory sig = _stopSignature(customerKey, a, t + 100, t + 200);
        vm.prank(operator);
        escrow.stopAndSettle(a, 10_000, bytes32(0), "", t + 100, t + 200, sig);
        assertEq(_status(a), IConferenceEscrow.Status.Settled, "signed stop settled");
        _stop(b);
        vm.warp(T0 + 100 + SETTLEMENT_WINDOW + 1);
        escrow.settleOverdue(b);
        assertEq(_status(b), IConferenceEscrow.Status.Settled, "overdue settled");
    }

    function test_WhenPaused_RefundsWork() public {
        uint256 stopped = _sign(fixedTerms);
        uint256 declined = _sign(fixedTerms);
        uint256 reclaimed = _sign(fixedTerms);
        uint256 account = _buyMinutes(10);
        _pause();
        uint256 before = customer.balance;
        _stop(stopped);
        vm.prank(operator);
        escrow.decline(declined);
        vm.warp(T0 + ACTIVATION_WINDOW + 1);
        escrow.reclaim(reclaimed);
        vm.prank(customer);
        escrow.close(account);
        assertEq(customer.balance - before, 3 * FIXED_PRICE + 10 * MINUTE_PRICE, "everything back");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    function test_WhenPaused_SessionsStartAndWindowsSettle() public {
        uint256 account = _buyMinutes(10);
        uint256 window = _reserve(_now(), _now() + 100);
        _pause();
        _start(account);
        _activate(account);
        assertEq(_status(account), IConferenceEscrow.Status.Active, "session runs");
        vm.warp(T0 + 100);
        _settle(window, 10_000);
        assertEq(_status(window), IConferenceEscrow.Status.Settled, "window settled");
    }

    function test_WhenPaused_WithdrawalsWork() public {
        uint256 id = _ended(fixedTerms, 10);
        _settle(id, 10_000);
        _pause();
        vm.prank(admin);
        escrow.withdraw(0);
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, 0);
        assertEq(admin.balance, FIXED_MARGIN, "margin");
        assertEq(infraPayout.balance, FIXED_INFRA, "infra");
        assertEq(softwarePayout.balance, FIXED_SOFTWARE, "software");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    // ---- roles: no operator or admin path takes escrow -------------------------------------------

    function test_RevertWhen_AdminPublishesTerms() public {
        IConferenceEscrow.Terms memory terms = escrow.termsOf(fixedTerms);
        terms.owner = admin;
        terms.price = 1;
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotOfferBook.selector, admin));
        vm.prank(admin);
        escrow.publishTerms(terms, 0);
    }

    function test_RevertWhen_OperatorClosesTerms() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotOfferBook.selector, operator));
        vm.prank(operator);
        escrow.closeTerms(fixedTerms);
    }

    function test_RevertWhen_OperatorDraftsOffer() public {
        IOfferBook.OfferParams memory params = _params(IOfferBook.Model.FixedPrice, 0, MAX_DURATION, 1, 0);
        uint32[] memory ids = _ids(infraId);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotOfferAdmin.selector, operator));
        vm.prank(operator);
        book.createOffer(params, ids);
    }

    function test_RevertWhen_AdminChangesOpenOfferComponents() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, FIXED_OFFER, IOfferBook.OfferStatus.Open)
        );
        vm.prank(admin);
        book.setComponent(FIXED_OFFER, 1);
    }

    function test_RevertWhen_OperatorStopsCustomersConference() public {
        uint256 id = _sign(fixedTerms);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, operator));
        vm.prank(operator);
        escrow.stop(id);
    }

    function test_RevertWhen_AdminClosesCustomersAccount() public {
        uint256 id = _buyMinutes(10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotCustomer.selector, id, admin));
        vm.prank(admin);
        escrow.close(id);
    }

    function test_RevertWhen_OperatorWithdrawsEscrow() public {
        _sign(dynamicTerms);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, operator, uint8(0)));
        vm.prank(operator);
        escrow.withdraw(0);
    }

    function test_WhenAdminMakesItselfOperator_MoneyStillGoesToCustomerAndProviders() public {
        vm.prank(admin);
        escrow.grantRole(OPERATOR_ROLE, admin);
        uint256 refunded = _sign(dynamicTerms);
        uint256 charged = _sign(dynamicTerms);
        uint256 declined = _sign(fixedTerms);
        vm.startPrank(admin);
        escrow.activate(refunded, EU);
        escrow.activate(charged, EU);
        escrow.decline(declined);
        vm.stopPrank();
        vm.warp(T0 + 600);
        _stop(refunded);
        _stop(charged);
        uint256 before = customer.balance;
        vm.startPrank(admin);
        escrow.settle(refunded, 0, bytes32(0), "");
        escrow.settle(charged, 10_000, bytes32(0), "");
        vm.stopPrank();

        assertEq(customer.balance - before, DYNAMIC_DEPOSIT + (DYNAMIC_DEPOSIT - 6e14), "refunds to the customer");
        assertEq(admin.balance, 0, "nothing pushed to the admin");
        assertEq(escrow.creditOf(admin, 0), 6e13, "only the owner's margin");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), 1.8e14, "software");
    }

    function test_WhenEveryoneWithdraws_EscrowEmptyAndCustomerPaidOnlyCharges() public {
        uint256 start = customer.balance;
        uint256 startUsd = usd.balanceOf(customer);
        _settle(_ended(fixedTerms, 10), 10_000); // 0.1 ether
        _settle(_ended(dynamicTerms, 600), 10_000); // 6e14
        uint256 usdId_ = _sign(usdTerms);
        _activate(usdId_);
        vm.warp(block.timestamp + 600);
        _stop(usdId_);
        _settle(usdId_, 10_000); // 60,000
        uint256 account = _activeMinutes(10);
        vm.warp(block.timestamp + 61);
        _stop(account);
        _settle(account, 10_000); // 6.1e13
        vm.prank(customer);
        escrow.close(account);

        vm.prank(admin);
        escrow.withdraw(0);
        vm.prank(admin);
        escrow.withdraw(usdId);
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, 0);
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, 0);
        vm.prank(infra);
        escrow.withdrawEarnings(infraId, usdId);
        vm.prank(software);
        escrow.withdrawEarnings(softwareId, usdId);

        assertEq(address(escrow).balance, 0, "no ETH left");
        assertEq(usd.balanceOf(address(escrow)), 0, "no USD left");
        uint256 ethCharged = FIXED_PRICE + 6e14 + 6.1e13;
        assertEq(start - customer.balance, ethCharged, "customer paid the charges only");
        assertEq(startUsd - usd.balanceOf(customer), 60_000, "customer paid the USD charge only");
        assertEq(
            infraPayout.balance + softwarePayout.balance + admin.balance, ethCharged, "charges all went to the parties"
        );
        assertEq(admin.balance, FIXED_MARGIN + 6e13 + 6.1e12, "owner: margins");
        assertEq(operator.balance, 0, "operator: nothing");
    }

    // ---- helpers ---------------------------------------------------------------------------------

    function _pause() internal {
        vm.prank(admin);
        escrow.setPaused(true);
    }
}
