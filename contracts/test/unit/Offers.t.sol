// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract OffersTest is UnitBase {
    IOfferBook.OfferParams internal fixedParams;

    function setUp() public override {
        super.setUp();
        fixedParams = _params(IOfferBook.Model.FixedPrice, 0, MAX_DURATION, FIXED_MARGIN, 0);
    }

    // ---- createOffer -----------------------------------------------------------------------------

    function test_RevertWhen_CreateCallerNotOfferAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotOfferAdmin.selector, operator));
        vm.prank(operator);
        book.createOffer(fixedParams, _ids(infraId, softwareId));
    }

    function test_RevertWhen_CreateMaxDurationZero() public {
        fixedParams.maxDuration = 0;
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(infraId, softwareId));
    }

    function test_RevertWhen_CreateTokenUnknown() public {
        fixedParams.tokenId = 2;
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(infraId, softwareId));
    }

    function test_RevertWhen_CreateMinimumChargeOnFixedPrice() public {
        fixedParams.minimumCharge = 1;
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(infraId, softwareId));
    }

    function test_RevertWhen_CreateFlexiblePeriodWithoutMinimumCharge() public {
        IOfferBook.OfferParams memory params = _params(IOfferBook.Model.FlexiblePeriod, 0, MAX_WINDOW, 1, 0);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(params, _ids(infraId, softwareId));
    }

    function test_RevertWhen_CreateNoProviders() public {
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(fixedParams, new uint32[](0));
    }

    function test_RevertWhen_CreateMoreThanMaxShares() public {
        uint32[] memory ids = _registerMany(17);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(admin);
        book.createOffer(fixedParams, ids);
    }

    function test_WhenCreateMaxShares_Creates() public {
        uint32[] memory ids = _registerMany(16);
        vm.prank(admin);
        uint32 offerId = book.createOffer(fixedParams, ids);
        assertEq(book.offerOf(offerId).shares.length, 16, "16 shares");
    }

    function test_RevertWhen_CreateDuplicateProvider() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_DuplicateProvider.selector, softwareId));
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(softwareId, infraId, softwareId));
    }

    function test_RevertWhen_CreateProviderLeft() public {
        vm.prank(monitor);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProviderInactive.selector, monitorId));
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(infraId, monitorId));
    }

    /// Errors.sol documents OfferBook_ProviderInactive for a provider that "has left the registry (or was
    /// never registered)".
    function test_RevertWhen_CreateProviderNeverRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProviderInactive.selector, uint32(99)));
        vm.prank(admin);
        book.createOffer(fixedParams, _ids(infraId, 99));
    }

    function test_WhenCreateValid_DraftsOffer() public {
        vm.expectEmit();
        emit IOfferBook.OfferCreated(6, admin, IOfferBook.Model.FixedPrice, 0);
        vm.prank(admin);
        uint32 offerId = book.createOffer(fixedParams, _ids(infraId, softwareId));

        assertEq(offerId, 6, "offerId");
        assertEq(book.offerCount(), 6, "offerCount");
        IOfferBook.Offer memory offer = book.offerOf(offerId);
        assertEq(offer.owner, admin, "owner");
        assertEq(uint256(offer.status), uint256(IOfferBook.OfferStatus.Draft), "draft");
        assertEq(offer.termsId, 0, "no terms yet");
        assertEq(offer.params.margin, FIXED_MARGIN, "margin");
        assertEq(offer.params.maxDuration, MAX_DURATION, "maxDuration");
        assertEq(offer.shares.length, 2, "shares");
        assertEq(offer.shares[0].providerId, infraId, "share 0");
        assertEq(offer.shares[0].component, 0, "no component yet");
        assertEq(offer.shares[1].providerId, softwareId, "share 1");
        assertEq(escrow.termsCount(), 5, "nothing published");
    }

    function test_WhenCreateWithErc20Token_Drafts() public {
        fixedParams.tokenId = usdId;
        vm.prank(admin);
        uint32 offerId = book.createOffer(fixedParams, _ids(infraId));
        assertEq(book.offerOf(offerId).params.tokenId, usdId, "token");
    }

    // ---- setComponent ----------------------------------------------------------------------------

    function test_RevertWhen_SetComponentOfferUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownOffer.selector, uint32(99)));
        vm.prank(infra);
        book.setComponent(99, 1);
    }

    function test_RevertWhen_SetComponentOfferOpen() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, FIXED_OFFER, IOfferBook.OfferStatus.Open)
        );
        vm.prank(infra);
        book.setComponent(FIXED_OFFER, 1);
    }

    function test_RevertWhen_SetComponentOfferRetired() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.prank(admin);
        book.retireOffer(offerId);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, offerId, IOfferBook.OfferStatus.Retired)
        );
        vm.prank(infra);
        book.setComponent(offerId, 1);
    }

    function test_RevertWhen_SetComponentZero() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.setComponent(offerId, 0);
    }

    function test_RevertWhen_SetComponentCallerProviderOfAnotherOffer() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, offerId, monitor));
        vm.prank(monitor);
        book.setComponent(offerId, 1);
    }

    function test_RevertWhen_SetComponentCallerNotRegistered() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, offerId, stranger));
        vm.prank(stranger);
        book.setComponent(offerId, 1);
    }

    function test_WhenProviderSetsComponent_Stored() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectEmit();
        emit IOfferBook.ComponentSet(offerId, softwareId, 7);
        _setComponent(software, offerId, 7);
        _setComponent(software, offerId, 8); // may change its mind while a draft
        IOfferBook.Offer memory offer = book.offerOf(offerId);
        assertEq(offer.shares[0].component, 0, "infra not set");
        assertEq(offer.shares[1].component, 8, "software set");
    }

    // ---- openOffer -------------------------------------------------------------------------------

    function test_RevertWhen_OpenOfferUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownOffer.selector, uint32(99)));
        vm.prank(admin);
        book.openOffer(99);
    }

    function test_RevertWhen_OpenCallerNotOwner() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotOwner.selector, offerId, infra));
        vm.prank(infra);
        book.openOffer(offerId);
    }

    function test_RevertWhen_OpenOfferAlreadyOpen() public {
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, FIXED_OFFER, IOfferBook.OfferStatus.Open)
        );
        vm.prank(admin);
        book.openOffer(FIXED_OFFER);
    }

    function test_RevertWhen_OpenOfferRetired() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.prank(admin);
        book.retireOffer(offerId);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, offerId, IOfferBook.OfferStatus.Retired)
        );
        vm.prank(admin);
        book.openOffer(offerId);
    }

    function test_RevertWhen_OpenComponentMissing() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        _setComponent(infra, offerId, FIXED_INFRA);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ComponentMissing.selector, offerId, softwareId));
        vm.prank(admin);
        book.openOffer(offerId);
    }

    function test_RevertWhen_OpenProviderLeftSinceDraft() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        _setComponent(infra, offerId, FIXED_INFRA);
        _setComponent(software, offerId, FIXED_SOFTWARE);
        vm.prank(software);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProviderInactive.selector, softwareId));
        vm.prank(admin);
        book.openOffer(offerId);
    }

    function test_RevertWhen_OpenNoCommonRegion() public {
        address asian = _account(31, "asian");
        uint32 asianId = _register(asian, IProviderRegistry.Role.Other, asian, 4, true); // ASIA only
        uint32 offerId = _draft(fixedParams, _ids(infraId, asianId)); // infra: EU, US
        _setComponent(infra, offerId, FIXED_INFRA);
        _setComponent(asian, offerId, FIXED_SOFTWARE);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoCommonRegion.selector, offerId));
        vm.prank(admin);
        book.openOffer(offerId);
    }

    function test_WhenDraftComplete_OpensAndPublishesTerms() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId, monitorId));
        _setComponent(infra, offerId, 5);
        _setComponent(software, offerId, 7);
        _setComponent(monitor, offerId, 11);

        vm.expectEmit();
        emit IConferenceEscrow.TermsPublished(
            6,
            offerId,
            IOfferBook.Model.FixedPrice,
            0,
            5 + 7 + 11 + FIXED_MARGIN,
            MAX_DURATION,
            0,
            EU_US,
            false,
            GDPR_SURCHARGE_BPS,
            REGION_SURCHARGE_BPS,
            monitor
        );
        vm.expectEmit();
        emit IOfferBook.OfferOpened(offerId, 6);
        vm.prank(admin);
        uint32 termsId = book.openOffer(offerId);

        assertEq(termsId, 6, "termsId");
        assertEq(escrow.termsCount(), 6, "termsCount");
        IOfferBook.Offer memory offer = book.offerOf(offerId);
        assertEq(uint256(offer.status), uint256(IOfferBook.OfferStatus.Open), "open");
        assertEq(offer.termsId, 6, "offer's termsId");

        IConferenceEscrow.Terms memory terms = escrow.termsOf(termsId);
        assertEq(terms.price, 5 + 7 + 11 + FIXED_MARGIN, "price: components + margin");
        assertEq(terms.maxDuration, MAX_DURATION, "maxDuration");
        assertEq(terms.offerId, offerId, "offerId");
        assertEq(terms.regions, EU_US, "regions every provider serves");
        assertEq(terms.gdprSurchargeBps, GDPR_SURCHARGE_BPS, "gdpr surcharge");
        assertEq(terms.regionSurchargeBps, REGION_SURCHARGE_BPS, "region surcharge");
        assertEq(uint256(terms.model), uint256(IOfferBook.Model.FixedPrice), "model");
        assertEq(terms.tokenId, 0, "ETH");
        assertEq(terms.gdpr, false, "the monitor is not GDPR-compliant");
        assertEq(terms.open, true, "open");
        assertEq(terms.owner, admin, "owner");
        assertEq(terms.margin, FIXED_MARGIN, "margin");
        assertEq(terms.minimumCharge, 0, "minimum");
        assertEq(terms.shares.length, 3, "shares");
        assertEq(terms.shares[2].providerId, monitorId, "monitor share");
        assertEq(terms.shares[2].component, 11, "monitor component");
    }

    function test_WhenEveryProviderGdpr_TermsGdpr() public view {
        IConferenceEscrow.Terms memory terms = escrow.termsOf(flexibleTerms);
        assertEq(terms.gdpr, true, "gdpr");
        assertEq(terms.minimumCharge, MINIMUM_CHARGE, "minimum");
        assertEq(terms.price, SECOND_PRICE, "price");
    }

    // ---- retireOffer -----------------------------------------------------------------------------

    function test_RevertWhen_RetireOfferUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownOffer.selector, uint32(99)));
        vm.prank(admin);
        book.retireOffer(99);
    }

    function test_RevertWhen_RetireCallerNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotOwner.selector, FIXED_OFFER, infra));
        vm.prank(infra);
        book.retireOffer(FIXED_OFFER);
    }

    function test_RevertWhen_RetireTwice() public {
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.OfferBook_WrongOfferStatus.selector, FIXED_OFFER, IOfferBook.OfferStatus.Retired
            )
        );
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);
    }

    function test_WhenDraft_RetiresWithoutTerms() public {
        uint32 offerId = _draft(fixedParams, _ids(infraId, softwareId));
        vm.expectEmit();
        emit IOfferBook.OfferRetired(offerId);
        vm.prank(admin);
        book.retireOffer(offerId);
        IOfferBook.Offer memory offer = book.offerOf(offerId);
        assertEq(uint256(offer.status), uint256(IOfferBook.OfferStatus.Retired), "retired");
        assertEq(offer.termsId, 0, "never published");
    }

    function test_WhenOpen_RetiresAndClosesTerms() public {
        vm.expectEmit();
        emit IConferenceEscrow.TermsClosed(fixedTerms);
        vm.expectEmit();
        emit IOfferBook.OfferRetired(FIXED_OFFER);
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);

        assertEq(uint256(book.offerOf(FIXED_OFFER).status), uint256(IOfferBook.OfferStatus.Retired), "retired");
        assertEq(escrow.termsOf(fixedTerms).open, false, "terms closed");
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, fixedTerms));
        vm.prank(customer);
        escrow.sign{value: FIXED_PRICE}(fixedTerms, 0, false);
    }

    function test_WhenRetired_SignedAgreementsUnaffected() public {
        uint256 id = _sign(dynamicTerms);
        vm.prank(admin);
        book.retireOffer(DYNAMIC_OFFER);
        _activate(id);
        vm.warp(block.timestamp + 100);
        _stop(id);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 100 * SECOND_PRICE, "refund");
        assertEq(escrow.earningsOf(infraId, 0), 100 * SECOND_INFRA, "infra earned");
    }

    // ---- views -----------------------------------------------------------------------------------

    function test_RevertWhen_OfferOfUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownOffer.selector, uint32(0)));
        book.offerOf(0);
    }

    function test_RevertWhen_TermsOfUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownTerms.selector, uint32(6)));
        escrow.termsOf(6);
    }

    // ---- helpers ---------------------------------------------------------------------------------

    function _registerMany(uint256 count) internal returns (uint32[] memory ids) {
        ids = new uint32[](count);
        for (uint256 i; i < count; ++i) {
            address account = vm.addr(1000 + i);
            ids[i] = _register(account, IProviderRegistry.Role.Other, account, ALL_REGIONS, true);
        }
    }
}
