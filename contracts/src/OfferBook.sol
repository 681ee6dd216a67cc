// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IConferenceEscrow} from "./interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "./interfaces/IOfferBook.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Errors} from "./libraries/Errors.sol";

/// @title OfferBook
/// @notice See {IOfferBook}. Deployed by the escrow, which accepts terms from this contract only: no admin
/// key can change an open offer's terms, only the providers' votes can.
/// @dev Roles are the escrow's: drafting an offer needs its OFFER_ADMIN_ROLE.
contract OfferBook is IOfferBook {
    /// @notice May draft offers (a role of the escrow's).
    bytes32 public constant OFFER_ADMIN_ROLE = keccak256("OFFER_ADMIN_ROLE");

    /// @notice The most providers one offer's terms may name (bounds every loop over them).
    uint256 public constant MAX_SHARES = 16;

    /// @notice The escrow that stores the published terms and holds the money.
    IConferenceEscrow public immutable ESCROW;

    /// @notice Where providers are registered.
    IProviderRegistry public immutable REGISTRY;

    /// @notice How long a proposal's vote stays open, in seconds.
    uint40 public immutable VOTING_PERIOD;

    /// @inheritdoc IOfferBook
    uint32 public offerCount;

    /// @inheritdoc IOfferBook
    uint256 public proposalCount;

    enum Ballot {
        None,
        Yes,
        No
    }

    /// @dev The offer owner's ballot is kept under this provider id, which no provider has (ids count from 1).
    uint32 private constant OWNER_BALLOT = 0;

    enum PassFailure {
        None,
        Executed,
        Stale,
        NoQuorum,
        ConsentMissing
    }

    mapping(uint32 offerId => Offer) private _offers;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(uint32 providerId => Ballot)) private _ballots;

    constructor(IConferenceEscrow escrow, IProviderRegistry registry, uint40 votingPeriod) {
        if (address(registry) == address(0) || votingPeriod == 0) revert Errors.Escrow_InvalidConfiguration();
        ESCROW = escrow;
        REGISTRY = registry;
        VOTING_PERIOD = votingPeriod;
    }

    // ---------------------------------------------------------------------------------------------
    // Owner
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IOfferBook
    function createOffer(OfferParams calldata params, uint32[] calldata providerIds) external returns (uint32 offerId) {
        if (!IAccessControl(address(ESCROW)).hasRole(OFFER_ADMIN_ROLE, msg.sender)) {
            revert Errors.OfferBook_NotOfferAdmin(msg.sender);
        }
        if (params.maxDuration == 0 || (params.tokenId != 0 && ESCROW.tokenOf(params.tokenId) == address(0))) {
            revert Errors.OfferBook_InvalidTerms();
        }
        _requireMinimumCharge(params.model, params.minimumCharge);
        _requireProviders(providerIds);

        offerId = ++offerCount;
        Offer storage offer = _offers[offerId];
        offer.owner = msg.sender;
        offer.status = OfferStatus.Draft;
        offer.params = params;
        for (uint256 i; i < providerIds.length; ++i) {
            offer.shares.push(Share({providerId: providerIds[i], component: 0}));
        }
        emit OfferCreated(offerId, msg.sender, params.model, params.tokenId);
    }

    /// @inheritdoc IOfferBook
    function setComponent(uint32 offerId, uint88 component) external {
        Offer storage offer = _offer(offerId);
        _requireOfferStatus(offerId, offer, OfferStatus.Draft);
        if (component == 0) revert Errors.OfferBook_InvalidTerms();
        uint32 providerId = REGISTRY.idOf(msg.sender);
        uint256 i = _indexOf(offer.shares, providerId);
        if (i == type(uint256).max) revert Errors.OfferBook_NotAProvider(offerId, msg.sender);
        offer.shares[i].component = component;
        emit ComponentSet(offerId, providerId, component);
    }

    /// @inheritdoc IOfferBook
    function openOffer(uint32 offerId) external returns (uint32 termsId) {
        Offer storage offer = _ownedOffer(offerId);
        _requireOfferStatus(offerId, offer, OfferStatus.Draft);
        for (uint256 i; i < offer.shares.length; ++i) {
            if (offer.shares[i].component == 0) {
                revert Errors.OfferBook_ComponentMissing(offerId, offer.shares[i].providerId);
            }
        }
        (uint32 regions, bool gdpr) = _profile(offerId, offer.shares, offer.params.margin);
        offer.status = OfferStatus.Open;
        // slither-disable-next-line reentrancy-events -- the escrow is the immutable contract that deployed this book and makes no calls back
        termsId = _publish(offerId, offer, offer.shares, offer.params.margin, offer.params.minimumCharge, regions, gdpr);
        emit OfferOpened(offerId, termsId);
    }

    /// @inheritdoc IOfferBook
    function retireOffer(uint32 offerId) external {
        Offer storage offer = _ownedOffer(offerId);
        OfferStatus status = offer.status;
        if (status != OfferStatus.Draft && status != OfferStatus.Open) {
            revert Errors.OfferBook_WrongOfferStatus(offerId, status);
        }
        offer.status = OfferStatus.Retired;
        // slither-disable-next-line reentrancy-events -- the escrow is the immutable contract that deployed this book and makes no calls back
        if (status == OfferStatus.Open) ESCROW.closeTerms(offer.termsId);
        emit OfferRetired(offerId);
    }

    // ---------------------------------------------------------------------------------------------
    // Providers: consensus decisions
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IOfferBook
    function propose(uint32 offerId, Share[] calldata shares, uint88 margin, uint88 minimumCharge)
        external
        returns (uint256 proposalId)
    {
        Offer storage offer = _offer(offerId);
        _requireOfferStatus(offerId, offer, OfferStatus.Open);
        uint32 proposerId = REGISTRY.idOf(msg.sender);
        Share[] memory members = _members(offer.termsId);
        if (!_contains(members, proposerId) || !REGISTRY.isActive(proposerId)) {
            revert Errors.OfferBook_NotAProvider(offerId, msg.sender);
        }
        // Everything execute will publish is checked and computed now, so that once the vote has passed no
        // provider can make the execution fail by changing its own registration.
        _requireMinimumCharge(offer.params.model, minimumCharge);
        uint32[] memory providerIds = new uint32[](shares.length);
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].component == 0) revert Errors.OfferBook_InvalidTerms();
            providerIds[i] = shares[i].providerId;
        }
        _requireProviders(providerIds);
        (uint32 regions, bool gdpr) = _profile(offerId, shares, margin);

        proposalId = ++proposalCount;
        Proposal storage proposal = _proposals[proposalId];
        proposal.offerId = offerId;
        proposal.baseTermsId = offer.termsId;
        // forge-lint: disable-next-line(unsafe-typecast)
        proposal.deadline = uint40(block.timestamp) + VOTING_PERIOD;
        proposal.electorate = _activeCount(members);
        proposal.regions = regions;
        proposal.gdpr = gdpr;
        proposal.margin = margin;
        proposal.minimumCharge = minimumCharge;
        for (uint256 i; i < shares.length; ++i) {
            proposal.shares.push(shares[i]);
        }
        emit ProposalCreated(proposalId, offerId, proposerId, proposal.deadline);
    }

    /// @inheritdoc IOfferBook
    function vote(uint256 proposalId, bool support) external {
        Proposal storage proposal = _proposal(proposalId);
        if (proposal.executed || block.timestamp > proposal.deadline) {
            revert Errors.OfferBook_VoteClosed(proposalId, proposal.deadline);
        }
        Ballot ballot = support ? Ballot.Yes : Ballot.No;
        uint32 providerId = REGISTRY.idOf(msg.sender);
        bool isMember = false;
        bool isProviderVoter = false;
        // A provider that left votes no more (and so cannot consent to joining either).
        if (providerId != 0 && REGISTRY.isActive(providerId)) {
            isMember = _contains(_members(proposal.baseTermsId), providerId);
            isProviderVoter = isMember || _indexOf(proposal.shares, providerId) != type(uint256).max;
        }
        bool isOwner = msg.sender == _offers[proposal.offerId].owner;
        if (!isProviderVoter && !isOwner) revert Errors.OfferBook_NotAVoter(proposalId, msg.sender);
        if (isProviderVoter) {
            if (_ballots[proposalId][providerId] != Ballot.None) {
                revert Errors.OfferBook_AlreadyVoted(proposalId, providerId);
            }
            _ballots[proposalId][providerId] = ballot;
            if (support && isMember) ++proposal.yesVotes;
            emit Voted(proposalId, providerId, support);
        }
        if (isOwner) {
            // An owner that is also a voting provider records both ballots in one call.
            if (!isProviderVoter && _ballots[proposalId][OWNER_BALLOT] != Ballot.None) {
                revert Errors.OfferBook_AlreadyVoted(proposalId, OWNER_BALLOT);
            }
            _ballots[proposalId][OWNER_BALLOT] = ballot;
            emit Voted(proposalId, OWNER_BALLOT, support);
        }
    }

    /// @inheritdoc IOfferBook
    function execute(uint256 proposalId) external returns (uint32 termsId) {
        Proposal storage proposal = _proposal(proposalId);
        (PassFailure failure, uint32 missing) = _passFailure(proposalId, proposal);
        if (failure == PassFailure.Executed) revert Errors.OfferBook_AlreadyExecuted(proposalId);
        if (failure == PassFailure.Stale) revert Errors.OfferBook_ProposalStale(proposalId);
        if (failure == PassFailure.NoQuorum) revert Errors.OfferBook_NoQuorum(proposalId, proposal.yesVotes);
        if (failure == PassFailure.ConsentMissing) revert Errors.OfferBook_ConsentMissing(proposalId, missing);
        proposal.executed = true;

        uint32 offerId = proposal.offerId;
        // The terms as computed when the proposal was made: the registry is not read again.
        // slither-disable-next-line reentrancy-events -- the escrow is the immutable contract that deployed this book and makes no calls back
        termsId = _publish(
            offerId,
            _offers[offerId],
            proposal.shares,
            proposal.margin,
            proposal.minimumCharge,
            proposal.regions,
            proposal.gdpr
        );
        emit ProposalExecuted(proposalId, termsId);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IOfferBook
    function hasPassed(uint256 proposalId) external view returns (bool) {
        (PassFailure failure,) = _passFailure(proposalId, _proposal(proposalId));
        return failure == PassFailure.None;
    }

    /// @inheritdoc IOfferBook
    function offerOf(uint32 offerId) external view returns (Offer memory offer) {
        offer = _offer(offerId);
        if (offer.termsId != 0) {
            // Opened: what the providers voted since replaces the draft's shares, margin and minimum charge.
            IConferenceEscrow.Terms memory terms = ESCROW.termsOf(offer.termsId);
            offer.shares = terms.shares;
            offer.params.margin = terms.margin;
            offer.params.minimumCharge = terms.minimumCharge;
        }
    }

    /// @inheritdoc IOfferBook
    function proposalOf(uint256 proposalId) external view returns (Proposal memory) {
        return _proposal(proposalId);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    /// @dev Publishes a terms version in the escrow in place of the offer's current one. Its price is the
    /// components plus the margin; its regions and GDPR status are given (see {_profile}).
    function _publish(
        uint32 offerId,
        Offer storage offer,
        Share[] storage shares,
        uint88 margin,
        uint88 minimumCharge,
        uint32 regions,
        bool gdpr
    ) private returns (uint32 termsId) {
        OfferParams storage params = offer.params;
        IConferenceEscrow.Terms memory terms = IConferenceEscrow.Terms({
            price: SafeCast.toUint88(_price(shares, margin)),
            maxDuration: params.maxDuration,
            offerId: SafeCast.toUint24(offerId),
            regions: regions,
            gdprSurchargeBps: params.gdprSurchargeBps,
            regionSurchargeBps: params.regionSurchargeBps,
            model: params.model,
            tokenId: params.tokenId,
            gdpr: gdpr,
            open: true,
            owner: offer.owner,
            margin: margin,
            monitored: false, // derived by the escrow from `monitor`
            minimumCharge: minimumCharge,
            monitor: _monitorOf(shares),
            shares: shares
        });
        termsId = ESCROW.publishTerms(terms, offer.termsId);
        offer.termsId = termsId;
    }

    /// @dev The regions every provider of `shares` serves and whether all of them are GDPR-compliant, from
    /// the registry as it is now. Reverts if one has left, if they have no region in common, or if the price
    /// (components plus margin) does not fit the terms' 88 bits.
    function _profile(uint32 offerId, Share[] memory shares, uint88 margin)
        private
        view
        returns (uint32 regions, bool gdpr)
    {
        regions = type(uint32).max;
        gdpr = true;
        for (uint256 i; i < shares.length; ++i) {
            // slither-disable-next-line calls-loop -- the registry is immutable and trusted; at most MAX_SHARES calls
            IProviderRegistry.Provider memory provider = REGISTRY.providerOf(shares[i].providerId);
            if (!provider.active) revert Errors.OfferBook_ProviderInactive(shares[i].providerId);
            regions &= provider.regions;
            gdpr = gdpr && provider.gdpr;
        }
        if (regions == 0) revert Errors.OfferBook_NoCommonRegion(offerId);
        _monitorOf(shares);
        if (_price(shares, margin) > type(uint88).max) revert Errors.OfferBook_InvalidTerms();
    }

    /// @dev Why `proposal` cannot be executed now (None: it can), and for a missing consent whose it is
    /// (a provider id, or OWNER_BALLOT for the offer's owner).
    function _passFailure(uint256 proposalId, Proposal storage proposal)
        private
        view
        returns (PassFailure, uint32 missing)
    {
        if (proposal.executed) return (PassFailure.Executed, 0);
        Offer storage offer = _offers[proposal.offerId];
        if (offer.status != OfferStatus.Open || offer.termsId != proposal.baseTermsId) return (PassFailure.Stale, 0);
        if (uint256(proposal.yesVotes) * 2 <= proposal.electorate) return (PassFailure.NoQuorum, 0);

        // Consent: nobody is made to work for less than it agreed to. A provider the proposal adds, and a
        // member whose component or part of the minimum charge it lowers, must have voted yes; so must the
        // owner if it changes the margin or lowers the owner's part of the minimum charge. A majority may
        // still remove a member: that ends its part in new agreements, it does not lower its pay.
        IConferenceEscrow.Terms memory base = ESCROW.termsOf(proposal.baseTermsId);
        mapping(uint32 providerId => Ballot) storage ballots = _ballots[proposalId];
        uint256 price = _price(proposal.shares, proposal.margin);
        uint256 minimumCharge = proposal.minimumCharge;
        for (uint256 i; i < proposal.shares.length; ++i) {
            Share storage share = proposal.shares[i];
            uint256 was = _componentIn(base.shares, share.providerId);
            bool lowered = was == 0 || share.component < was
                || minimumCharge * share.component / price < base.minimumCharge * was / base.price;
            if (lowered && ballots[share.providerId] != Ballot.Yes) {
                return (PassFailure.ConsentMissing, share.providerId);
            }
        }
        bool ownerLowered = proposal.margin != base.margin
            || minimumCharge * proposal.margin / price < base.minimumCharge * base.margin / base.price;
        if (ownerLowered && ballots[OWNER_BALLOT] != Ballot.Yes) return (PassFailure.ConsentMissing, OWNER_BALLOT);
        return (PassFailure.None, 0);
    }

    /// @dev The components plus the margin.
    function _price(Share[] memory shares, uint256 margin) private pure returns (uint256 price) {
        price = margin;
        for (uint256 i; i < shares.length; ++i) {
            price += shares[i].component;
        }
    }

    /// @dev `providerId`'s component in `shares`, 0 if it has none.
    function _componentIn(Share[] memory shares, uint32 providerId) private pure returns (uint256) {
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].providerId == providerId) return shares[i].component;
        }
        return 0;
    }

    /// @dev The account of the one provider of `shares` registered with the Monitoring role (address(0) if
    /// none): the independent monitor whose signed report alone settles the terms' conferences. Roles and
    /// accounts never change in the registry, so a proposal checked by {_profile} publishes the same monitor.
    /// Reverts if two providers have the role: one figure, from one monitor.
    function _monitorOf(Share[] memory shares) private view returns (address monitor) {
        for (uint256 i; i < shares.length; ++i) {
            // slither-disable-next-line calls-loop -- the registry is immutable and trusted; at most MAX_SHARES calls
            IProviderRegistry.Provider memory provider = REGISTRY.providerOf(shares[i].providerId);
            if (provider.role != IProviderRegistry.Role.Monitoring) continue;
            if (monitor != address(0)) revert Errors.OfferBook_SecondMonitor(shares[i].providerId);
            monitor = provider.account;
        }
    }

    /// @dev How many of `members` have not left the registry.
    function _activeCount(Share[] memory members) private view returns (uint8 count) {
        for (uint256 i; i < members.length; ++i) {
            // slither-disable-next-line calls-loop -- the registry is immutable and trusted; at most MAX_SHARES calls
            if (REGISTRY.isActive(members[i].providerId)) ++count;
        }
    }

    function _requireProviders(uint32[] memory providerIds) private view {
        uint256 count = providerIds.length;
        if (count == 0 || count > MAX_SHARES) revert Errors.OfferBook_InvalidTerms();
        for (uint256 i; i < count; ++i) {
            for (uint256 j; j < i; ++j) {
                if (providerIds[i] == providerIds[j]) revert Errors.OfferBook_DuplicateProvider(providerIds[i]);
            }
            // slither-disable-next-line calls-loop -- the registry is immutable and trusted; at most MAX_SHARES calls
            if (!REGISTRY.isActive(providerIds[i])) revert Errors.OfferBook_ProviderInactive(providerIds[i]);
        }
    }

    /// @dev A FlexiblePeriod offer charges a minimum for readiness; no other model has one.
    function _requireMinimumCharge(Model model, uint88 minimumCharge) private pure {
        if ((model == Model.FlexiblePeriod) != (minimumCharge != 0)) revert Errors.OfferBook_InvalidTerms();
    }

    /// @dev The providers of a published terms version.
    function _members(uint32 termsId) private view returns (Share[] memory) {
        return ESCROW.termsOf(termsId).shares;
    }

    function _contains(Share[] memory shares, uint32 providerId) private pure returns (bool) {
        if (providerId == 0) return false;
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].providerId == providerId) return true;
        }
        return false;
    }

    /// @dev The index of `providerId` in `shares`, or type(uint256).max if it is not there.
    function _indexOf(Share[] storage shares, uint32 providerId) private view returns (uint256) {
        if (providerId == 0) return type(uint256).max;
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].providerId == providerId) return i;
        }
        return type(uint256).max;
    }

    function _offer(uint32 offerId) private view returns (Offer storage offer) {
        offer = _offers[offerId];
        if (offer.status == OfferStatus.None) revert Errors.OfferBook_UnknownOffer(offerId);
    }

    function _ownedOffer(uint32 offerId) private view returns (Offer storage offer) {
        offer = _offer(offerId);
        if (offer.owner != msg.sender) revert Errors.OfferBook_NotOwner(offerId, msg.sender);
    }

    function _requireOfferStatus(uint32 offerId, Offer storage offer, OfferStatus expected) private view {
        if (offer.status != expected) revert Errors.OfferBook_WrongOfferStatus(offerId, offer.status);
    }

    function _proposal(uint256 proposalId) private view returns (Proposal storage proposal) {
        proposal = _proposals[proposalId];
        if (proposal.offerId == 0) revert Errors.OfferBook_UnknownProposal(proposalId);
    }
}
