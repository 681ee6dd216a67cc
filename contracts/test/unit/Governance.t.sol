// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract GovernanceTest is UnitBase {
    uint88 internal constant NEW_INFRA = 1.1e12; // new DynamicPrice price: 1.1e12 + 3e11 + 1e11 = 1.5e12

    /// An open DynamicPrice offer of three providers (infra, software, monitor): quorum is two yes votes.
    uint32 internal trioOffer;
    uint32 internal trioTerms;

    function setUp() public override {
        super.setUp();
        trioTerms = _customOffer(
            IOfferBook.Model.DynamicPrice,
            0,
            MAX_DURATION,
            _three(infra, software, monitor),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE, 2e11),
            SECOND_MARGIN,
            0
        );
        trioOffer = escrow.termsOf(trioTerms).offerId;
    }

    // ---- helpers ---------------------------------------------------------------------------------

    function _share(uint32 id, uint88 component) internal pure returns (IOfferBook.Share memory) {
        return IOfferBook.Share({providerId: id, component: component});
    }

    function _shares(IOfferBook.Share memory a, IOfferBook.Share memory b)
        internal
        pure
        returns (IOfferBook.Share[] memory list)
    {
        list = new IOfferBook.Share[](2);
        list[0] = a;
        list[1] = b;
    }

    function _shares(IOfferBook.Share memory a, IOfferBook.Share memory b, IOfferBook.Share memory c)
        internal
        pure
        returns (IOfferBook.Share[] memory list)
    {
        list = new IOfferBook.Share[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
    }

    /// The dynamic offer's shares with infra's component raised.
    function _raise() internal pure returns (IOfferBook.Share[] memory) {
        return _shares(_share(1, NEW_INFRA), _share(2, SECOND_SOFTWARE));
    }

    function _propose(address by, uint32 offerId, IOfferBook.Share[] memory shares, uint88 margin, uint88 minimum)
        internal
        returns (uint256 id)
    {
        vm.prank(by);
        id = book.propose(offerId, shares, margin, minimum);
    }

    function _vote(address by, uint256 proposalId, bool support) internal {
        vm.prank(by);
        book.vote(proposalId, support);
    }

    /// The trio offer without the monitor, the others' components and the margin unchanged: it lowers nobody's
    /// pay, so a majority decides it alone.
    function _dropMonitor() internal pure returns (IOfferBook.Share[] memory) {
        return _shares(_share(1, SECOND_INFRA), _share(2, SECOND_SOFTWARE));
    }

    /// A proposal on the dynamic offer raising infra's component, with both members' yes votes.
    function _passedRaise() internal returns (uint256 id) {
        id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
    }

    // ---- propose ---------------------------------------------------------------------------------

    function test_RevertWhen_ProposeOfferUnknown() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownOffer.selector, uint32(99)));
        vm.prank(infra);
        book.propose(99, shares, 0, 0);
    }

    function test_RevertWhen_ProposeOfferDraft() public {
        uint32 offerId = _draft(
            _params(IOfferBook.Model.DynamicPrice, 0, MAX_DURATION, SECOND_MARGIN, 0), _ids(infraId, softwareId)
        );
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(
            abi.encodeWithSelector(Errors.OfferBook_WrongOfferStatus.selector, offerId, IOfferBook.OfferStatus.Draft)
        );
        vm.prank(infra);
        book.propose(offerId, shares, 0, 0);
    }

    function test_RevertWhen_ProposeOfferRetired() public {
        vm.prank(admin);
        book.retireOffer(DYNAMIC_OFFER);
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(
            abi.encodeWithSelector(
                Errors.OfferBook_WrongOfferStatus.selector, DYNAMIC_OFFER, IOfferBook.OfferStatus.Retired
            )
        );
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, 0, 0);
    }

    function test_RevertWhen_ProposeCallerNotCurrentProvider() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, DYNAMIC_OFFER, monitor));
        vm.prank(monitor);
        book.propose(DYNAMIC_OFFER, shares, 0, 0);
    }

    function test_RevertWhen_ProposeCallerNotRegistered() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, DYNAMIC_OFFER, stranger));
        vm.prank(stranger);
        book.propose(DYNAMIC_OFFER, shares, 0, 0);
    }

    function test_RevertWhen_ProposeOfferAdmin() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, DYNAMIC_OFFER, admin));
        vm.prank(admin);
        book.propose(DYNAMIC_OFFER, shares, 0, 0);
    }

    function test_RevertWhen_ProposeComponentZero() public {
        IOfferBook.Share[] memory shares = _shares(_share(infraId, 0), _share(softwareId, 1));
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, 0, 0);
    }

    function test_WhenCurrentProvider_Proposes() public {
        uint256 deadline = block.timestamp + VOTING_PERIOD;
        vm.expectEmit();
        emit IOfferBook.ProposalCreated(1, DYNAMIC_OFFER, softwareId, deadline);
        uint256 id = _propose(software, DYNAMIC_OFFER, _raise(), 5e10, 0);

        assertEq(id, 1, "proposalId");
        assertEq(book.proposalCount(), 1, "proposalCount");
        IOfferBook.Proposal memory p = book.proposalOf(id);
        assertEq(p.offerId, DYNAMIC_OFFER, "offerId");
        assertEq(p.baseTermsId, dynamicTerms, "base terms");
        assertEq(p.deadline, deadline, "deadline");
        assertEq(p.yesVotes, 0, "no votes");
        assertEq(p.executed, false, "not executed");
        assertEq(p.margin, 5e10, "margin");
        assertEq(p.minimumCharge, 0, "minimum");
        assertEq(p.shares.length, 2, "shares");
        assertEq(p.shares[0].component, NEW_INFRA, "new component");
        assertEq(book.hasPassed(id), false, "not passed");
    }

    // ---- vote ------------------------------------------------------------------------------------

    function test_RevertWhen_VoteProposalUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownProposal.selector, uint256(7)));
        vm.prank(infra);
        book.vote(7, true);
    }

    function test_RevertWhen_VoteAfterDeadline() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        uint256 deadline = block.timestamp + VOTING_PERIOD;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_VoteClosed.selector, id, deadline));
        vm.prank(infra);
        book.vote(id, true);
    }

    function test_WhenVoteAtDeadline_Counts() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        vm.warp(block.timestamp + VOTING_PERIOD);
        _vote(infra, id, true);
        assertEq(book.proposalOf(id).yesVotes, 1, "counted");
    }

    function test_RevertWhen_VoteAfterExecution() public {
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        book.execute(id);
        uint256 deadline = book.proposalOf(id).deadline;
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_VoteClosed.selector, id, deadline));
        vm.prank(monitor);
        book.vote(id, true);
    }

    function test_RevertWhen_VoteCallerNeitherCurrentNorProposed() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAVoter.selector, id, monitor));
        vm.prank(monitor);
        book.vote(id, true);
    }

    function test_RevertWhen_VoteCallerNotRegistered() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAVoter.selector, id, stranger));
        vm.prank(stranger);
        book.vote(id, true);
    }

    function test_RevertWhen_VoteTwice() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        _vote(infra, id, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_AlreadyVoted.selector, id, infraId));
        vm.prank(infra);
        book.vote(id, true);
    }

    function test_WhenMemberVotesYes_Counted() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        vm.expectEmit();
        emit IOfferBook.Voted(id, softwareId, true);
        _vote(software, id, true);
        assertEq(book.proposalOf(id).yesVotes, 1, "one yes");
    }

    function test_WhenMemberVotesNo_NotCounted() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        vm.expectEmit();
        emit IOfferBook.Voted(id, softwareId, false);
        _vote(software, id, false);
        assertEq(book.proposalOf(id).yesVotes, 0, "no yes");
    }

    function test_WhenAddedProviderVotesYes_NotCountedInQuorum() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        _vote(monitor, id, true);
        assertEq(book.proposalOf(id).yesVotes, 0, "consent is not a quorum vote");
        assertEq(book.hasPassed(id), false, "no quorum");
    }

    // ---- execute / hasPassed: quorum -------------------------------------------------------------

    function test_RevertWhen_ExecuteProposalUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownProposal.selector, uint256(1)));
        book.execute(1);
    }

    function test_RevertWhen_HasPassedProposalUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_UnknownProposal.selector, uint256(1)));
        book.hasPassed(1);
    }

    function test_RevertWhen_ExecuteHalfOfProvidersVotedYes() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 0);
        _vote(infra, id, true); // 1 of 2: not more than half
        assertEq(book.hasPassed(id), false, "not passed");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoQuorum.selector, id, uint8(1)));
        book.execute(id);
    }

    function test_RevertWhen_ExecuteMajorityVotedNo() public {
        uint256 id = _propose(infra, trioOffer, _shares(_share(infraId, 1), _share(softwareId, 1)), 0, 0);
        _vote(infra, id, true);
        _vote(software, id, false);
        _vote(monitor, id, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoQuorum.selector, id, uint8(1)));
        book.execute(id);
    }

    function test_WhenMoreThanHalfVotedYes_Passes() public {
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        assertEq(book.hasPassed(id), false, "1 of 3");
        _vote(software, id, true);
        assertEq(book.hasPassed(id), true, "2 of 3");
    }

    function test_WhenPassedAfterDeadline_StillExecutable() public {
        uint256 id = _passedRaise();
        vm.warp(block.timestamp + VOTING_PERIOD + 30 days);
        assertEq(book.hasPassed(id), true, "passed");
        book.execute(id);
    }

    // ---- execute: consent of added providers -----------------------------------------------------

    function test_RevertWhen_ExecuteAddedProviderDidNotVote() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        assertEq(book.hasPassed(id), false, "consent missing");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, monitorId));
        book.execute(id);
    }

    function test_RevertWhen_ExecuteAddedProviderVotedNo() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, monitorId));
        book.execute(id);
    }

    function test_WhenAddedProviderConsents_ExecutesNewVersion() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, 2e11, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, true);
        assertEq(book.hasPassed(id), false, "a new margin needs the owner's yes");
        _vote(admin, id, true);
        assertEq(book.hasPassed(id), true, "passed");

        vm.expectEmit();
        // Every term of the new version: the monitor narrows nothing (it serves everywhere) but is not GDPR-compliant.
        emit IConferenceEscrow.TermsPublished(
            7,
            DYNAMIC_OFFER,
            IOfferBook.Model.DynamicPrice,
            0,
            1.2e12,
            MAX_DURATION,
            0,
            EU_US,
            false,
            GDPR_SURCHARGE_BPS,
            REGION_SURCHARGE_BPS,
            monitor
        );
        vm.expectEmit();
        emit IConferenceEscrow.TermsClosed(dynamicTerms);
        vm.expectEmit();
        emit IOfferBook.ProposalExecuted(id, 7);
        vm.prank(stranger); // anyone may execute
        uint32 termsId = book.execute(id);

        assertEq(termsId, 7, "new version");
        assertEq(book.offerOf(DYNAMIC_OFFER).termsId, 7, "offer points at it");
        assertEq(book.proposalOf(id).executed, true, "executed");
        assertEq(book.hasPassed(id), false, "cannot execute again");
        assertEq(escrow.termsOf(dynamicTerms).open, false, "old version closed");
        IConferenceEscrow.Terms memory terms = escrow.termsOf(7);
        assertEq(terms.open, true, "new version open");
        assertEq(terms.price, 1.2e12, "price");
        assertEq(terms.margin, 2e11, "margin");
        assertEq(terms.shares.length, 3, "three providers");
        assertEq(terms.gdpr, false, "the monitor is not GDPR-compliant");
        assertEq(terms.regions, EU_US, "regions");
        assertEq(terms.maxDuration, MAX_DURATION, "params kept");
        assertEq(terms.owner, admin, "owner kept");
    }

    /// Regression (review, offerOf returned the draft's terms): once the providers voted, offerOf returns the
    /// current version's shares, margin and minimum charge.
    function test_WhenTermsVoted_OfferOfReturnsCurrentTerms() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), 5e10, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(admin, id, true);
        uint32 termsId = book.execute(id);
        IOfferBook.Offer memory offer = book.offerOf(DYNAMIC_OFFER);
        assertEq(offer.termsId, termsId, "current version");
        assertEq(offer.shares[0].component, NEW_INFRA, "voted component");
        assertEq(offer.params.margin, 5e10, "voted margin");
        assertEq(offer.params.maxDuration, MAX_DURATION, "params kept");
        vm.prank(admin);
        book.retireOffer(DYNAMIC_OFFER);
        assertEq(book.offerOf(DYNAMIC_OFFER).shares[0].component, NEW_INFRA, "retired: its last version");
    }

    function test_WhenRemovingProvider_MajorityDecides() public {
        uint256 id = _propose(
            infra,
            trioOffer,
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE)),
            SECOND_MARGIN,
            0
        );
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, false);
        uint32 termsId = book.execute(id);
        IConferenceEscrow.Terms memory terms = escrow.termsOf(termsId);
        assertEq(terms.shares.length, 2, "monitor removed");
        assertEq(terms.gdpr, true, "now GDPR-compliant");
        assertEq(terms.price, SECOND_PRICE, "price");
    }

    // ---- execute: executed / stale ---------------------------------------------------------------

    function test_RevertWhen_ExecuteTwice() public {
        uint256 id = _passedRaise();
        book.execute(id);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_AlreadyExecuted.selector, id));
        book.execute(id);
    }

    function test_RevertWhen_ExecuteAfterAnotherProposalChangedTerms() public {
        uint256 first = _passedRaise();
        uint256 second = _propose(software, DYNAMIC_OFFER, _raise(), 1, 0);
        _vote(infra, second, true);
        _vote(software, second, true);
        book.execute(first);
        assertEq(book.hasPassed(second), false, "stale");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProposalStale.selector, second));
        book.execute(second);
    }

    function test_RevertWhen_ExecuteAfterOfferRetired() public {
        uint256 id = _passedRaise();
        vm.prank(admin);
        book.retireOffer(DYNAMIC_OFFER);
        assertEq(book.hasPassed(id), false, "stale");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProposalStale.selector, id));
        book.execute(id);
    }

    // ---- propose: the new shares must be valid (checked when proposed, not at execution) ----------

    function test_RevertWhen_ProposeNoShares() public {
        IOfferBook.Share[] memory shares = new IOfferBook.Share[](0);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
    }

    /// Regression (review, propose stored more than MAX_SHARES): refused when proposed.
    function test_RevertWhen_ProposeMoreThanMaxShares() public {
        IOfferBook.Share[] memory shares = new IOfferBook.Share[](17);
        for (uint256 i; i < 17; ++i) {
            shares[i] = _share(uint32(i + 1), 1);
        }
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        assertEq(book.proposalCount(), 0, "nothing stored");
    }

    function test_RevertWhen_ProposeDuplicateProvider() public {
        IOfferBook.Share[] memory shares = _shares(_share(infraId, 1), _share(infraId, 2));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_DuplicateProvider.selector, infraId));
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
    }

    function test_RevertWhen_ProposeMinimumChargeOnDynamicPrice() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 1);
    }

    function test_RevertWhen_ProposeFlexibleWithoutMinimumCharge() public {
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        vm.prank(infra);
        book.propose(FLEXIBLE_OFFER, shares, SECOND_MARGIN, 0);
    }

    function test_RevertWhen_ProposeNoCommonRegion() public {
        address asian = _account(31, "asian");
        uint32 asianId = _register(asian, IProviderRegistry.Role.Other, asian, 4, true); // ASIA only
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(asianId, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoCommonRegion.selector, DYNAMIC_OFFER));
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
    }

    function test_RevertWhen_ProposeProviderLeft() public {
        vm.prank(monitor);
        registry.deregister();
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1));
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProviderInactive.selector, monitorId));
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
    }

    function test_WhenProposed_TermsProfileComputedThen() public {
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        IOfferBook.Proposal memory p = book.proposalOf(id);
        assertEq(p.regions, EU_US, "regions every provider of the proposal serves");
        assertEq(p.gdpr, true, "infra and software are GDPR-compliant");
        assertEq(p.electorate, 3, "the trio");
    }

    // ---- a passed proposal cannot be blocked by one member (review, finding 4) -------------------

    /// Regression: a member that lost the vote leaves the registry just before execution; the proposal
    /// still executes, as computed when it was made.
    function test_WhenMemberLeavesAfterPassing_StillExecutes() public {
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, false);
        vm.prank(monitor);
        registry.deregister();
        assertEq(book.hasPassed(id), true, "still passed");
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).shares.length, 2, "published");
    }

    /// Regression: a member named in the proposal that voted yes and then left: its vote still counts and
    /// the proposal still executes (the providers may vote it out later).
    function test_WhenYesVoterLeavesAfterPassing_StillExecutes() public {
        uint256 id = _passedRaise();
        vm.prank(software);
        registry.deregister();
        assertEq(book.hasPassed(id), true, "still passed");
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).price, NEW_INFRA + SECOND_SOFTWARE + SECOND_MARGIN, "new price");
    }

    /// Regression: a member that lost the vote changes its regions so that the providers would have none in
    /// common; the terms are published with the regions computed when the proposal was made.
    function test_WhenMemberChangesRegionsAfterPassing_StillExecutes() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 3e11));
        uint256 id = _propose(infra, trioOffer, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(monitor, id, true);
        _vote(software, id, false);
        vm.prank(software);
        registry.update(softwarePayout, 4, true); // ASIA only: nothing in common with infra's EU and US
        assertEq(book.hasPassed(id), true, "still passed");
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).regions, EU_US, "regions as computed when proposed");
    }

    // ---- departed providers (review) -------------------------------------------------------------

    function test_RevertWhen_ProposeCallerLeft() public {
        vm.prank(infra);
        registry.deregister();
        IOfferBook.Share[] memory shares = _raise();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAProvider.selector, DYNAMIC_OFFER, infra));
        vm.prank(infra);
        book.propose(DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
    }

    function test_RevertWhen_VoteCallerLeft() public {
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        vm.prank(software);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAVoter.selector, id, software));
        vm.prank(software);
        book.vote(id, true);
    }

    function test_WhenMemberLeftBeforeProposal_NotInElectorate() public {
        // Of the dynamic offer's two members the software provider left: the other one decides alone, and may
        // vote it out.
        vm.prank(software);
        registry.deregister();
        IOfferBook.Share[] memory shares = new IOfferBook.Share[](1);
        shares[0] = _share(infraId, SECOND_INFRA);
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        assertEq(book.proposalOf(id).electorate, 1, "only the active member");
        _vote(infra, id, true);
        assertEq(book.hasPassed(id), true, "one of one");
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).shares.length, 1, "the departed provider is out");
    }

    function test_RevertWhen_DepartedMemberWouldHaveMadeQuorum() public {
        // Trio: the monitor left before the proposal; 1 yes of the remaining 2 is not a majority, and the
        // monitor cannot vote.
        vm.prank(monitor);
        registry.deregister();
        uint256 id = _propose(infra, trioOffer, _dropMonitor(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NotAVoter.selector, id, monitor));
        vm.prank(monitor);
        book.vote(id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoQuorum.selector, id, uint8(1)));
        book.execute(id);
    }

    // ---- the minority's protection (review, finding 5) -------------------------------------------

    /// Regression: the majority lowers a member's component; that member must agree.
    function test_RevertWhen_MajorityLowersMembersComponent() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, trioOffer, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, false);
        assertEq(book.hasPassed(id), false, "the monitor's yes is missing");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, monitorId));
        book.execute(id);
    }

    function test_WhenMemberAgreesToLowerComponent_Executes() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, trioOffer, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(monitor, id, true);
        assertEq(book.hasPassed(id), true, "the monitor agreed");
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).shares[2].component, 1e11, "lowered");
    }

    /// Regression: the majority changes the owner's margin; the owner must agree.
    function test_RevertWhen_MarginChangedWithoutOwner() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), 0, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, uint32(0)));
        book.execute(id);
        _vote(admin, id, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, uint32(0)));
        book.execute(id);
    }

    function test_WhenOwnerVotes_BallotZeroNotInQuorum() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), 0, 0);
        vm.expectEmit();
        emit IOfferBook.Voted(id, 0, true);
        _vote(admin, id, true);
        assertEq(book.proposalOf(id).yesVotes, 0, "the owner's yes is consent, not a quorum vote");
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_AlreadyVoted.selector, id, uint32(0)));
        vm.prank(admin);
        book.vote(id, true);
        _vote(infra, id, true);
        _vote(software, id, true);
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).margin, 0, "margin changed with the owner's yes");
    }

    /// Regression: raising its own components without raising the minimum charge, the majority would
    /// lower the minority's part of every minimum charge floor(minimum · c / price); that needs its yes (and
    /// the owner's, whose margin's part shrinks too).
    function test_RevertWhen_MajorityDilutesMinimumChargePart() public {
        uint32 termsId = _customOffer(
            IOfferBook.Model.FlexiblePeriod,
            0,
            MAX_WINDOW,
            _three(infra, software, monitor),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE, 2e11),
            SECOND_MARGIN,
            MINIMUM_CHARGE
        );
        uint32 offerId = escrow.termsOf(termsId).offerId;
        IOfferBook.Share[] memory shares = _shares(
            _share(infraId, 2 * SECOND_INFRA), _share(softwareId, 2 * SECOND_SOFTWARE), _share(monitorId, 2e11)
        );
        uint256 id = _propose(infra, offerId, shares, SECOND_MARGIN, MINIMUM_CHARGE);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, monitorId));
        book.execute(id);
        _vote(monitor, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id, uint32(0)));
        book.execute(id);
        _vote(admin, id, true);
        book.execute(id);

        // Raising the minimum in proportion lowers nobody's part: the majority decides alone.
        uint32 current = book.offerOf(offerId).termsId;
        IOfferBook.Share[] memory again = _shares(
            _share(infraId, 4 * SECOND_INFRA), _share(softwareId, 4 * SECOND_SOFTWARE), _share(monitorId, 2e11)
        );
        uint256 next = _propose(infra, offerId, again, SECOND_MARGIN, 3 * MINIMUM_CHARGE);
        _vote(infra, next, true);
        _vote(software, next, true);
        assertEq(book.hasPassed(next), true, "nobody's part of the minimum lowered");
        assertTrue(book.execute(next) != current, "published");
    }

    function test_WhenFlexibleMinimumChargeVoted_NewMinimum() public {
        IOfferBook.Share[] memory shares = _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE));
        uint256 id = _propose(software, FLEXIBLE_OFFER, shares, SECOND_MARGIN, 2e15);
        _vote(infra, id, true);
        _vote(software, id, true);
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).minimumCharge, 2e15, "minimum");
        (uint256 deposit,,) = escrow.quote(termsId, 0, false, 100);
        assertEq(deposit, 2e15 + 100 * SECOND_PRICE, "deposit");
    }

    // ---- agreements keep the terms they signed ---------------------------------------------------

    function test_WhenTermsVotedAfterSigning_AgreementKeepsItsTerms() public {
        uint256 old = _sign(dynamicTerms);
        uint256 id = _passedRaise();
        uint32 newTerms = book.execute(id);

        // The old version is closed to new agreements.
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, dynamicTerms));
        vm.prank(customer);
        escrow.sign{value: DYNAMIC_DEPOSIT}(dynamicTerms, 0, false);

        // The old agreement runs and is paid at its own terms and split.
        assertEq(escrow.agreementOf(old).price, SECOND_PRICE, "old price");
        assertEq(escrow.agreementOf(old).termsId, dynamicTerms, "old terms");
        _activate(old);
        vm.warp(block.timestamp + 600);
        _stop(old);
        uint256 before = customer.balance;
        _settle(old, 10_000);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 600 * SECOND_PRICE, "old refund");
        assertEq(escrow.earningsOf(infraId, 0), 600 * SECOND_INFRA, "infra at old component");
        assertEq(escrow.earningsOf(softwareId, 0), 600 * SECOND_SOFTWARE, "software at old component");
        assertEq(escrow.creditOf(admin, 0), 600 * SECOND_MARGIN, "old margin");

        // A new agreement pays the new price, split by the new components.
        uint256 newPrice = NEW_INFRA + SECOND_SOFTWARE + SECOND_MARGIN; // 1.5e12
        uint256 fresh = _sign(newTerms);
        assertEq(escrow.depositOf(fresh), newPrice * MAX_DURATION, "new deposit");
        _activate(fresh);
        vm.warp(block.timestamp + 100);
        _stop(fresh);
        _settle(fresh, 10_000);
        assertEq(escrow.earningsOf(infraId, 0), 600 * SECOND_INFRA + 100 * uint256(NEW_INFRA), "infra at new component");
        assertEq(escrow.earningsOf(softwareId, 0), 700 * SECOND_SOFTWARE, "software");
        assertEq(escrow.creditOf(admin, 0), 700 * SECOND_MARGIN, "margin");
    }
}
