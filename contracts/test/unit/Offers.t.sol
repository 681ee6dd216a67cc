// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {DynamicPriceEscrow} from "../../src/DynamicPriceEscrow.sol";
import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {BaseTest} from "../Base.t.sol";

contract ConstructorTest is BaseTest {
    function test_RevertWhen_ConfigurationHasAZero() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidConfiguration.selector));
        new DynamicPriceEscrow(address(0), operator, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidConfiguration.selector));
        new DynamicPriceEscrow(owner, address(0), 1, 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidConfiguration.selector));
        new DynamicPriceEscrow(owner, operator, 0, 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidConfiguration.selector));
        new DynamicPriceEscrow(owner, operator, 1, 0);
    }

    function test_WhenDeployed_RolesAndWindowsAreSet() external view {
        assertTrue(escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), owner), "owner is admin");
        assertTrue(escrow.hasRole(escrow.OPERATOR_ROLE(), operator), "operator has the role");
        assertTrue(!escrow.hasRole(escrow.OPERATOR_ROLE(), owner), "owner is not operator");
        assertEq(escrow.activationWindow(), ACTIVATION_WINDOW, "activation window");
        assertEq(escrow.settlementWindow(), SETTLEMENT_WINDOW, "settlement window");
        assertEq(escrow.MIN_AVAILABILITY_BPS(), 7500, "threshold");
    }
}

contract PublishOfferTest is BaseTest {
    function test_RevertWhen_CallerIsNotOwner() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, operator, escrow.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(operator);
        escrow.publishOffer(provider, PRICE, MAX_DURATION);
    }

    function test_RevertWhen_TermsHaveAZero() external {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidOffer.selector, PRICE, MAX_DURATION, address(0)));
        escrow.publishOffer(address(0), PRICE, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidOffer.selector, 0, MAX_DURATION, provider));
        escrow.publishOffer(provider, 0, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidOffer.selector, PRICE, 0, provider));
        escrow.publishOffer(provider, PRICE, 0);
        vm.stopPrank();
    }

    function test_WhenOwnerPublishes_TheOfferIsStoredAndAnnounced() external {
        vm.expectEmit();
        emit IDynamicPriceEscrow.OfferPublished(2, provider, 7, 60);
        vm.prank(owner);
        uint256 id = escrow.publishOffer(provider, 7, 60);
        assertEq(id, 2, "ids count from 1");
        assertEq(escrow.offerCount(), 2, "offer count");
        IDynamicPriceEscrow.Offer memory offer = escrow.getOffer(id);
        assertEq(offer.provider, provider, "provider");
        assertEq(offer.pricePerSecond, 7, "price");
        assertEq(offer.maxDuration, 60, "max duration");
        assertTrue(!offer.retired, "not retired");
    }

    function test_RevertWhen_OfferIsUnknown() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownOffer.selector, 9));
        escrow.getOffer(9);
    }
}

contract RetireOfferTest is BaseTest {
    function test_RevertWhen_CallerIsNotOwner() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, escrow.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(stranger);
        escrow.retireOffer(offerId);
    }

    function test_RevertWhen_OfferIsUnknown() external {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownOffer.selector, 5));
        vm.prank(owner);
        escrow.retireOffer(5);
    }

    function test_WhenRetired_NobodyCanSignItButSignedAgreementsGoOn() external {
        uint256 id = _sign();
        vm.expectEmit();
        emit IDynamicPriceEscrow.OfferRetired(offerId);
        vm.prank(owner);
        escrow.retireOffer(offerId);
        assertTrue(escrow.getOffer(offerId).retired, "retired");

        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_OfferRetired.selector, offerId));
        vm.prank(customer);
        escrow.sign{value: DEPOSIT}(offerId);

        vm.prank(operator);
        escrow.activate(id);
        assertEq(_status(id), IDynamicPriceEscrow.Status.Active, "the signed agreement still runs");
    }
}

contract PauseTest is BaseTest {
    function test_RevertWhen_CallerIsNotOwner() external {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, operator, escrow.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(operator);
        escrow.setPaused(true);
    }

    function test_WhenPaused_SigningStopsButRefundsSettlementsAndWithdrawalsGoOn() external {
        uint256 running = _signAndActivate();
        uint256 waiting = _sign();
        vm.prank(owner);
        escrow.setPaused(true);

        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        vm.prank(customer);
        escrow.sign{value: DEPOSIT}(offerId);

        vm.warp(block.timestamp + 100);
        vm.prank(customer);
        escrow.stop(running);
        vm.prank(operator);
        escrow.settle(running, 10_000);
        vm.prank(provider);
        escrow.withdraw();
        assertEq(provider.balance, uint256(PRICE) * 100, "provider withdrew while paused");

        vm.warp(block.timestamp + ACTIVATION_WINDOW);
        escrow.reclaim(waiting);
        assertEq(_status(waiting), IDynamicPriceEscrow.Status.Refunded, "reclaimed while paused");

        vm.prank(owner);
        escrow.setPaused(false);
        _sign();
    }
}
