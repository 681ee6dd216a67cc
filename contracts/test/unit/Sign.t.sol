// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {FeeOnTransferToken, SenderFeeToken} from "../mocks/Tokens.sol";

contract SignTest is UnitBase {
    // ---- sign: requirements ----------------------------------------------------------------------

    function test_RevertWhen_SignPaused() public {
        vm.prank(admin);
        escrow.setPaused(true);
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, false);
    }

    function test_RevertWhen_SignTermsUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, uint32(99)));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(99, 0, false);
    }

    function test_RevertWhen_SignTermsClosed() public {
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, fixedTerms));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, false);
    }

    function test_RevertWhen_SignTimeLimitedTerms() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, minutesTerms, IOfferBook.Model.TimeLimited)
        );
        vm.prank(customer);
        escrow.sign{value: MINUTE_PRICE}(minutesTerms, 0, false);
    }

    function test_RevertWhen_SignFlexiblePeriodTerms() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, flexibleTerms, IOfferBook.Model.FlexiblePeriod)
        );
        vm.prank(customer);
        escrow.sign{value: MINIMUM_CHARGE}(flexibleTerms, 0, false);
    }

    function test_RevertWhen_SignNoRegionServed() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoRegionAllowed.selector, fixedTerms, uint32(4)));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 4, false); // ASIA only; the terms serve EU and US
    }

    function test_RevertWhen_SignGdprUnavailable() public {
        uint32 termsId = _fixedOfferWithMonitor();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_GdprUnavailable.selector, termsId));
        vm.prank(customer);
        escrow.sign{value: 1 ether}(termsId, 0, true);
    }

    function test_RevertWhen_SignEthTooLittle() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, FIXED_PRICE, FIXED_PRICE - 1));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE - 1}(fixedTerms, 0, false);
    }

    function test_RevertWhen_SignEthTooMuch() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, FIXED_PRICE, FIXED_PRICE + 1));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE + 1}(fixedTerms, 0, false);
    }

    function test_RevertWhen_SignSurchargeNotPaid() public {
        // GDPR raises the price by 20%: the base price is not enough.
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 0.12 ether, FIXED_PRICE));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, true);
    }

    function test_RevertWhen_SignEthSentToTokenTerms() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 0, 1));
        vm.prank(customer);
        escrow.sign{value: 1}(usdTerms, 0, false);
    }

    function test_RevertWhen_SignTokenAllowanceMissing() public {
        usd.mint(stranger, USD_DEPOSIT);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, USD_DEPOSIT)
        );
        vm.prank(stranger);
        escrow.sign(usdTerms, 0, false);
    }

    function test_RevertWhen_SignFeeOnTransferToken() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        vm.prank(admin);
        uint8 feeId = escrow.addToken(address(fee));
        uint32 termsId = _customOffer(
            IOfferBook.Model.FixedPrice, feeId, MAX_DURATION, _two(infra, software), _amounts(600, 300), 100, 0
        );
        fee.mint(customer, 1000);
        vm.prank(customer);
        fee.approve(address(escrow), type(uint256).max);

        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnsupportedToken.selector, address(fee), 1000, 990));
        vm.prank(customer);
        escrow.sign(termsId, 0, false);
        assertEq(fee.balanceOf(customer), 1000, "nothing taken");
    }

    /// Review: a token that charges its fee to the sender on top of the amount passes the incoming check
    /// (the escrow receives exactly the deposit) and makes the escrow insolvent on the way out. It cannot be
    /// detected when paid in, so SECURITY.md lists it as unsupported: this test pins why.
    function test_WhenSenderPaysFeeOnTop_NotDetected_Unsupported() public {
        SenderFeeToken fee = new SenderFeeToken();
        vm.prank(admin);
        uint8 feeId = escrow.addToken(address(fee));
        uint32 termsId = _customOffer(
            IOfferBook.Model.FixedPrice, feeId, MAX_DURATION, _two(infra, software), _amounts(600, 300), 100, 0
        );
        fee.mint(customer, 2000);
        fee.mint(stranger, 2000);
        vm.prank(customer);
        fee.approve(address(escrow), type(uint256).max);
        vm.prank(stranger);
        fee.approve(address(escrow), type(uint256).max);
        vm.prank(customer);
        uint256 id = escrow.sign(termsId, 0, false);
        vm.prank(stranger);
        escrow.sign(termsId, 0, false);
        assertEq(fee.balanceOf(address(escrow)), 2000, "both deposits received in full");
        _stop(id); // the refund of 1,000 costs the escrow 1,010
        assertEq(fee.balanceOf(address(escrow)), 990, "less than the 1,000 it still owes the other customer");
    }

    // ---- sign: outcomes --------------------------------------------------------------------------

    function test_WhenFixedPriceInEth_Signs() public {
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSigned(
            1,
            fixedTerms,
            customer,
            FIXED_PRICE,
            IOfferBook.Model.FixedPrice,
            0,
            FIXED_PRICE,
            0,
            EU_US,
            false,
            MAX_DURATION
        );
        vm.prank(customer);
        uint256 id = escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, false);

        assertEq(id, 1, "id");
        assertEq(escrow.agreementCount(), 1, "count");
        assertEq(before - customer.balance, FIXED_PRICE, "customer paid");
        assertEq(address(escrow).balance, FIXED_PRICE, "escrow holds it");
        assertEq(escrow.depositOf(id), FIXED_PRICE, "depositOf");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.customer, customer, "customer");
        assertEq(a.termsId, fixedTerms, "termsId");
        assertEq(a.allowedRegions, EU_US, "every served region");
        assertEq(uint256(a.model), uint256(IOfferBook.Model.FixedPrice), "model");
        assertEq(a.tokenId, 0, "ETH");
        assertEq(a.gdpr, false, "gdpr");
        assertEq(a.status, IConferenceEscrow.Status.Requested, "starts at once");
        assertEq(a.price, FIXED_PRICE, "price");
        assertEq(a.duration, MAX_DURATION, "duration");
        assertEq(a.startedAt, T0, "requested now");
        assertEq(a.endedAt, 0, "not ended");
    }

    function test_WhenDynamicPrice_DepositIsPriceTimesMaxDuration() public {
        uint256 before = customer.balance;
        uint256 id = _sign(dynamicTerms);
        assertEq(before - customer.balance, DYNAMIC_DEPOSIT, "paid 1e12 x 3600");
        assertEq(escrow.depositOf(id), DYNAMIC_DEPOSIT, "depositOf");
        assertEq(escrow.agreementOf(id).status, IConferenceEscrow.Status.Requested, "requested");
    }

    function test_WhenGdprRequired_PriceRaisedByGdprSurcharge() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.12 ether}(fixedTerms, 0, true);
        assertEq(escrow.agreementOf(id).price, FIXED_PRICE, "the terms' price");
        assertEq(escrow.agreementOf(id).surchargeBps, 2000, "+20%");
        assertEq(escrow.depositOf(id), 0.12 ether, "deposit +20%");
        assertEq(escrow.agreementOf(id).gdpr, true, "gdpr");
        assertEq(address(escrow).balance, 0.12 ether, "held");
    }

    function test_WhenRegionsNarrowed_PriceRaisedByRegionSurcharge() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.11 ether}(fixedTerms, EU_ONLY, false);
        assertEq(escrow.agreementOf(id).surchargeBps, 1000, "+10%");
        assertEq(escrow.depositOf(id), 0.11 ether, "deposit +10%");
        assertEq(escrow.agreementOf(id).allowedRegions, EU_ONLY, "EU only");
    }

    function test_WhenBothConstraints_SurchargesAdd() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 4.68e15}(dynamicTerms, EU_ONLY, true);
        assertEq(escrow.agreementOf(id).price, SECOND_PRICE, "the terms' price");
        assertEq(escrow.agreementOf(id).surchargeBps, 3000, "+30%");
        assertEq(escrow.depositOf(id), 1.3e12 * 3600, "deposit");
    }

    function test_WhenAllowedRegionsCoverServed_NoSurcharge() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: FIXED_PRICE}(fixedTerms, ALL_REGIONS, false);
        assertEq(escrow.agreementOf(id).price, FIXED_PRICE, "the terms' price");
        assertEq(escrow.agreementOf(id).surchargeBps, 0, "no surcharge");
        assertEq(escrow.agreementOf(id).allowedRegions, EU_US, "intersection with the served regions");
    }

    function test_WhenAllowedRegionsPartlyServed_NarrowedWithSurcharge() public {
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.11 ether}(fixedTerms, 5, false); // EU + ASIA
        assertEq(escrow.agreementOf(id).allowedRegions, EU_ONLY, "EU only");
        assertEq(escrow.agreementOf(id).surchargeBps, 1000, "narrowed: +10%");
        assertEq(escrow.depositOf(id), 0.11 ether, "deposit");
    }

    function test_WhenConstrained_EventCarriesConstraintsAndSurcharge() public {
        // GDPR (+20%) and EU only (+10%): the event alone gives the deposit, ⌊0.1 ether · 1.3⌋.
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSigned(
            1,
            fixedTerms,
            customer,
            0.13 ether,
            IOfferBook.Model.FixedPrice,
            0,
            FIXED_PRICE,
            3000,
            EU_ONLY,
            true,
            MAX_DURATION
        );
        vm.prank(customer);
        escrow.sign{value: 0.13 ether}(fixedTerms, EU_ONLY, true);
    }

    function test_WhenErc20Terms_PullsExactDeposit() public {
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSigned(
            1, usdTerms, customer, USD_DEPOSIT, IOfferBook.Model.DynamicPrice, usdId, 100, 0, EU_US, false, MAX_DURATION
        );
        vm.prank(customer);
        uint256 id = escrow.sign(usdTerms, 0, false);
        assertEq(usd.balanceOf(customer), USD_MINTED - USD_DEPOSIT, "customer paid");
        assertEq(usd.balanceOf(address(escrow)), USD_DEPOSIT, "escrow holds it");
        assertEq(address(escrow).balance, 0, "no ETH");
        assertEq(escrow.agreementOf(id).tokenId, usdId, "tokenId");
    }

    // ---- quote -----------------------------------------------------------------------------------

    function test_WhenQuoted_MatchesWhatSigningCosts() public view {
        (uint256 deposit, uint256 price, uint24 surchargeBps) = escrow.quote(dynamicTerms, EU_ONLY, true, 0);
        assertEq(price, SECOND_PRICE, "the terms' price");
        assertEq(surchargeBps, 3000, "both surcharges");
        assertEq(deposit, 1.3e12 * 3600, "deposit");
        (deposit, price, surchargeBps) = escrow.quote(minutesTerms, 0, false, 10);
        assertEq(deposit, 10 * MINUTE_PRICE, "minutes deposit");
        assertEq(surchargeBps, 0, "no surcharge");
        (deposit, price, surchargeBps) = escrow.quote(flexibleTerms, 0, true, 1000);
        assertEq(deposit, 1.2e15 + 1000 * 1.2e12, "flexible deposit: surcharged minimum + price x seconds");
    }

    function test_RevertWhen_QuoteQuantityBeyond40Bits() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidQuantity.selector, uint256(2) ** 40));
        escrow.quote(flexibleTerms, 0, false, uint256(2) ** 40);
    }

    /// Regression (review, surcharge rounding): the surcharge is applied to the deposit and every charge as a
    /// whole, so it is not rounded away on a small price per unit: at 9 units a second on a 6-decimal token, a
    /// 10% surcharge brings 3,240 units an hour (it was floor(9 · 1.1) = 9 a second, no surcharge at all).
    function test_WhenSmallPriceSurcharged_SurchargeNotRoundedAway() public {
        uint32 termsId = _customOffer(
            IOfferBook.Model.DynamicPrice, usdId, MAX_DURATION, _two(infra, software), _amounts(6, 3), 0, 0
        );
        (uint256 deposit, uint256 price, uint24 surchargeBps) = escrow.quote(termsId, EU_ONLY, false, 0);
        assertEq(price, 9, "9 units a second");
        assertEq(surchargeBps, REGION_SURCHARGE_BPS, "+10%");
        assertEq(deposit, 35_640, "an hour: 32,400 + 3,240");
        vm.prank(customer);
        uint256 id = escrow.sign(termsId, EU_ONLY, false);
        _activate(id);
        vm.warp(block.timestamp + 1 hours);
        _stop(id);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 35_640, 0, false);
        _settle(id, 10_000);
        assertEq(escrow.earningsOf(infraId, usdId), 23_760, "infra: 6/9 of it");
        assertEq(escrow.earningsOf(softwareId, usdId), 11_880, "software: 3/9 of it");
    }

    function test_RevertWhen_QuoteTermsClosed() public {
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, fixedTerms));
        escrow.quote(fixedTerms, 0, false, 0);
    }

    function test_RevertWhen_QuoteConstraintsUnmet() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoRegionAllowed.selector, fixedTerms, uint32(4)));
        escrow.quote(fixedTerms, 4, false, 0);
    }

    // ---- buyMinutes ------------------------------------------------------------------------------

    function test_RevertWhen_BuyMinutesPaused() public {
        vm.prank(admin);
        escrow.setPaused(true);
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.buyMinutes{value: MINUTE_PRICE}(minutesTerms, 0, false, 1);
    }

    function test_RevertWhen_BuyMinutesTermsClosed() public {
        vm.prank(admin);
        book.retireOffer(MINUTES_OFFER);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, minutesTerms));
        vm.prank(customer);
        escrow.buyMinutes{value: MINUTE_PRICE}(minutesTerms, 0, false, 1);
    }

    function test_RevertWhen_BuyMinutesOfFixedPriceTerms() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, fixedTerms, IOfferBook.Model.FixedPrice)
        );
        vm.prank(customer);
        escrow.buyMinutes{value: FIXED_PRICE}(fixedTerms, 0, false, 1);
    }

    function test_RevertWhen_BuyZeroMinutes() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidQuantity.selector, 0));
        vm.prank(customer);
        escrow.buyMinutes(minutesTerms, 0, false, 0);
    }

    function test_RevertWhen_BuyMoreMinutesThanMaxDuration() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidQuantity.selector, 601));
        vm.prank(customer);
        escrow.buyMinutes{value: 601 * MINUTE_PRICE}(minutesTerms, 0, false, 601);
    }

    function test_RevertWhen_BuyMinutesNoRegionServed() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoRegionAllowed.selector, minutesTerms, uint32(4)));
        vm.prank(customer);
        escrow.buyMinutes{value: MINUTE_PRICE}(minutesTerms, 4, false, 1);
    }

    function test_RevertWhen_BuyMinutesWrongDeposit() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 10 * MINUTE_PRICE, 9 * MINUTE_PRICE)
        );
        vm.prank(customer);
        escrow.buyMinutes{value: 9 * MINUTE_PRICE}(minutesTerms, 0, false, 10);
    }

    function test_WhenBuyingMaxMinutes_Buys() public {
        uint256 id = _buyMinutes(600);
        assertEq(escrow.agreementOf(id).duration, MAX_MINUTES_SECONDS, "all 10 hours");
        assertEq(escrow.depositOf(id), 600 * MINUTE_PRICE, "deposit");
    }

    function test_WhenBuyingMinutes_IdleAccountOpened() public {
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSigned(
            1,
            minutesTerms,
            customer,
            10 * MINUTE_PRICE,
            IOfferBook.Model.TimeLimited,
            0,
            MINUTE_PRICE,
            0,
            EU_US,
            false,
            10 minutes
        );
        vm.prank(customer);
        uint256 id = escrow.buyMinutes{value: 10 * MINUTE_PRICE}(minutesTerms, 0, false, 10);

        assertEq(before - customer.balance, 6e14, "paid 10 x 6e13");
        assertEq(address(escrow).balance, 6e14, "held");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Idle, "idle");
        assertEq(a.duration, 600, "seconds bought");
        assertEq(a.startedAt, 0, "not started");
        assertEq(a.price, MINUTE_PRICE, "price per minute");
        IConferenceEscrow.MinutesAccount memory account = escrow.minutesAccountOf(id);
        assertEq(account.deposit, 6e14, "account deposit");
        assertEq(account.charged, 0, "nothing charged");
        assertEq(escrow.depositOf(id), 6e14, "depositOf");
    }

    function test_WhenBuyingMinutesWithGdpr_Surcharged() public {
        vm.prank(customer);
        uint256 id = escrow.buyMinutes{value: 10 * 7.2e13}(minutesTerms, 0, true, 10);
        assertEq(escrow.agreementOf(id).price, MINUTE_PRICE, "the terms' price");
        assertEq(escrow.agreementOf(id).surchargeBps, 2000, "+20%");
        assertEq(escrow.minutesAccountOf(id).deposit, 7.2e14, "deposit");
    }

    // ---- reserve ---------------------------------------------------------------------------------

    function test_RevertWhen_ReservePaused() public {
        vm.prank(admin);
        escrow.setPaused(true);
        vm.expectRevert(Errors.Escrow_Paused.selector);
        vm.prank(customer);
        escrow.reserve{value: 1 ether}(flexibleTerms, 0, false, _now(), _now() + 100);
    }

    function test_RevertWhen_ReserveDynamicPriceTerms() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WrongModel.selector, dynamicTerms, IOfferBook.Model.DynamicPrice)
        );
        vm.prank(customer);
        escrow.reserve{value: 1 ether}(dynamicTerms, 0, false, _now(), _now() + 100);
    }

    function test_RevertWhen_ReserveEmptyWindow() public {
        uint40 t = _now() + 100;
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidWindow.selector, t, t));
        vm.prank(customer);
        escrow.reserve(flexibleTerms, 0, false, t, t);
    }

    function test_RevertWhen_ReserveFromAfterTo() public {
        uint40 t = _now() + 100;
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidWindow.selector, t + 1, t));
        vm.prank(customer);
        escrow.reserve(flexibleTerms, 0, false, t + 1, t);
    }

    function test_RevertWhen_ReserveWindowAlreadyOver() public {
        uint40 t = _now();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidWindow.selector, t - 100, t));
        vm.prank(customer);
        escrow.reserve(flexibleTerms, 0, false, t - 100, t);
    }

    function test_RevertWhen_ReserveWindowLongerThanMax() public {
        uint40 from = _now() + 10;
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidWindow.selector, from, from + MAX_WINDOW + 1));
        vm.prank(customer);
        escrow.reserve(flexibleTerms, 0, false, from, from + MAX_WINDOW + 1);
    }

    function test_RevertWhen_ReserveGdprUnavailable() public {
        uint32 termsId = _customOffer(
            IOfferBook.Model.FlexiblePeriod,
            0,
            MAX_WINDOW,
            _two(infra, monitor),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE),
            SECOND_MARGIN,
            MINIMUM_CHARGE
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_GdprUnavailable.selector, termsId));
        vm.prank(customer);
        escrow.reserve{value: 1 ether}(termsId, 0, true, _now(), _now() + 100);
    }

    function test_RevertWhen_ReserveWrongDeposit() public {
        uint256 deposit = MINIMUM_CHARGE + 100 * SECOND_PRICE;
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, deposit, deposit - MINIMUM_CHARGE));
        vm.prank(customer);
        escrow.reserve{value: deposit - MINIMUM_CHARGE}(flexibleTerms, 0, false, _now(), _now() + 100);
    }

    function test_WhenReservingMaxWindow_Reserves() public {
        uint40 from = _now() + 10;
        uint256 id = _reserve(from, from + MAX_WINDOW);
        assertEq(escrow.depositOf(id), MINIMUM_CHARGE + SECOND_PRICE * MAX_WINDOW, "deposit");
    }

    function test_WhenReserving_WindowStoredAndDepositHeld() public {
        uint40 from = _now() + 100;
        uint40 to = _now() + 4100;
        uint256 deposit = MINIMUM_CHARGE + 4000 * SECOND_PRICE; // 5e15
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSigned(
            1, flexibleTerms, customer, deposit, IOfferBook.Model.FlexiblePeriod, 0, SECOND_PRICE, 0, EU_US, false, 4000
        );
        vm.expectEmit();
        emit IConferenceEscrow.WindowReserved(1, from, to);
        vm.prank(customer);
        uint256 id = escrow.reserve{value: deposit}(flexibleTerms, 0, false, from, to);

        assertEq(before - customer.balance, 5e15, "paid");
        assertEq(address(escrow).balance, 5e15, "held");
        IConferenceEscrow.Window memory w = escrow.windowOf(id);
        assertEq(w.from, from, "from");
        assertEq(w.to, to, "to");
        assertEq(w.minimumCharge, MINIMUM_CHARGE, "minimum");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Idle, "idle");
        assertEq(a.duration, 4000, "window length");
        assertEq(a.price, SECOND_PRICE, "price");
        assertEq(escrow.depositOf(id), 5e15, "depositOf");
    }

    function test_WhenReservingWithConstraints_MinimumAndPriceSurcharged() public {
        uint40 from = _now() + 100;
        uint256 deposit = 1.3e15 + 1000 * 1.3e12;
        vm.prank(customer);
        uint256 id = escrow.reserve{value: deposit}(flexibleTerms, EU_ONLY, true, from, from + 1000);
        assertEq(escrow.windowOf(id).minimumCharge, 1.3e15, "minimum +30%");
        assertEq(escrow.agreementOf(id).surchargeBps, 3000, "price +30%");
        assertEq(escrow.depositOf(id), deposit, "deposit");
    }

    function test_WhenWindowStartedAlready_Reserves() public {
        // Only the end must be in the future.
        uint256 id = _reserve(_now() - 100, _now() + 100);
        assertEq(escrow.depositOf(id), MINIMUM_CHARGE + 200 * SECOND_PRICE, "deposit for the whole window");
    }

    function test_WhenReservingInErc20_PullsExactDeposit() public {
        uint32 termsId = _customOffer(
            IOfferBook.Model.FlexiblePeriod, usdId, MAX_WINDOW, _two(infra, software), _amounts(60, 30), 10, 5000
        );
        vm.prank(customer);
        uint256 id = escrow.reserve(termsId, 0, false, _now(), _now() + 1000);
        assertEq(usd.balanceOf(address(escrow)), 5000 + 100 * 1000, "held");
        assertEq(usd.balanceOf(customer), USD_MINTED - 105_000, "paid");
        assertEq(escrow.depositOf(id), 105_000, "depositOf");
    }

    function test_WhenBuyingMinutesInErc20_PullsExactDeposit() public {
        uint32 termsId = _customOffer(
            IOfferBook.Model.TimeLimited,
            usdId,
            MAX_MINUTES_SECONDS,
            _two(infra, software),
            _amounts(3600, 1800),
            600,
            0
        );
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 0, 60_000));
        vm.prank(customer);
        escrow.buyMinutes{value: 60_000}(termsId, 0, false, 10);

        vm.prank(customer);
        uint256 id = escrow.buyMinutes(termsId, 0, false, 10);
        assertEq(usd.balanceOf(address(escrow)), 60_000, "held");
        assertEq(escrow.minutesAccountOf(id).deposit, 60_000, "account");
    }

    // ---- views -----------------------------------------------------------------------------------

    function test_RevertWhen_AgreementOfUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 1));
        escrow.agreementOf(1);
    }

    function test_RevertWhen_DepositOfUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 0));
        escrow.depositOf(0);
    }

    function test_WhenOtherModels_MinutesAccountAndWindowAreZero() public {
        uint256 id = _sign(dynamicTerms);
        assertEq(escrow.minutesAccountOf(id).deposit, 0, "no minutes account");
        assertEq(escrow.windowOf(id).to, 0, "no window");
        uint256 account = _buyMinutes(1);
        assertEq(escrow.windowOf(account).to, 0, "no window for minutes");
        assertEq(escrow.agreementCount(), 2, "count");
        assertEq(escrow.termsCount(), 5, "terms count");
    }
}
