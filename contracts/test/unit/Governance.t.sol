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
        uint256 id = _propose(infra, trioOffer, _shares(_share(infraId, 1), _share(softwareId, 1)), 0, 0);
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
        uint256 id = _propose(infra, trioOffer, _shares(_share(infraId, 1), _share(softwareId, 1)), 0, 0);
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
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id));
        book.execute(id);
    }

    function test_RevertWhen_ExecuteAddedProviderVotedNo() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, false);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ConsentMissing.selector, id));
        book.execute(id);
    }

    function test_WhenAddedProviderConsents_ExecutesNewVersion() public {
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(monitorId, 1e11));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, 2e11, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(monitor, id, true);
        assertEq(book.hasPassed(id), true, "passed");

        vm.expectEmit();
        emit IConferenceEscrow.TermsPublished(7, DYNAMIC_OFFER, IOfferBook.Model.DynamicPrice, 1.2e12);
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

    // ---- execute: the new shares must be valid ---------------------------------------------------

    function test_RevertWhen_ExecuteNoShares() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, new IOfferBook.Share[](0), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        book.execute(id);
    }

    function test_RevertWhen_ExecuteDuplicateProvider() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _shares(_share(infraId, 1), _share(infraId, 2)), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_DuplicateProvider.selector, infraId));
        book.execute(id);
        assertEq(book.proposalOf(id).executed, false, "not marked executed");
    }

    function test_RevertWhen_ExecuteProviderLeft() public {
        uint256 id = _passedRaise();
        vm.prank(software);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_ProviderInactive.selector, softwareId));
        book.execute(id);
    }

    function test_RevertWhen_ExecuteMinimumChargeOnDynamicPrice() public {
        uint256 id = _propose(infra, DYNAMIC_OFFER, _raise(), SECOND_MARGIN, 1);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        book.execute(id);
    }

    function test_RevertWhen_ExecuteFlexibleWithoutMinimumCharge() public {
        uint256 id = _propose(infra, FLEXIBLE_OFFER, _raise(), SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        vm.expectRevert(Errors.OfferBook_InvalidTerms.selector);
        book.execute(id);
    }

    function test_RevertWhen_ExecuteNoCommonRegion() public {
        address asian = _account(31, "asian");
        uint32 asianId = _register(asian, IProviderRegistry.Role.Other, asian, 4, true); // ASIA only
        IOfferBook.Share[] memory shares =
            _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE), _share(asianId, 1));
        uint256 id = _propose(infra, DYNAMIC_OFFER, shares, SECOND_MARGIN, 0);
        _vote(infra, id, true);
        _vote(software, id, true);
        _vote(asian, id, true);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_NoCommonRegion.selector, DYNAMIC_OFFER));
        book.execute(id);
    }

    function test_WhenFlexibleMinimumChargeVoted_NewMinimum() public {
        IOfferBook.Share[] memory shares = _shares(_share(infraId, SECOND_INFRA), _share(softwareId, SECOND_SOFTWARE));
        uint256 id = _propose(software, FLEXIBLE_OFFER, shares, SECOND_MARGIN, 2e15);
        _vote(infra, id, true);
        _vote(software, id, true);
        uint32 termsId = book.execute(id);
        assertEq(escrow.termsOf(termsId).minimumCharge, 2e15, "minimum");
        (uint256 deposit,) = escrow.quote(termsId, 0, false, 100);
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
