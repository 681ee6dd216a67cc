// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IOfferBook
/// @notice Offers and the providers' decisions on them. The book decides terms; the escrow
/// ({IConferenceEscrow}) stores every published terms version and holds the money signed under it.
/// @dev An offer names a sequence of immutable terms versions. The owner drafts it and names its providers;
/// each provider sets its own price component; the owner opens it, which publishes the first version.
/// After that the shared terms (the providers and their components, the margin, the minimum charge) change
/// only by proposal and vote. Only providers that have not left the registry propose and vote, one provider
/// one vote. A proposal passes when
///   - more than half of its electorate voted yes before its deadline: the members of the current terms that
///     had not left the registry when it was made (a yes stays counted if its voter leaves later);
///   - every provider it adds voted yes (its consent to its component);
///   - every member whose pay it lowers voted yes: its component, or its part of the minimum charge
///     floor(minimum · component / price). A majority may remove a member, never pay it less;
///   - the offer's owner voted yes if it changes the margin or lowers the owner's part of the minimum charge
///     (the owner votes too; its ballot counts for nothing else and is reported as provider id 0).
/// The new version's price, regions and GDPR status are computed when the proposal is made, from the
/// registry as it is then (regions: those every provider of the proposal serves), and published unchanged:
/// nothing a provider changes in the registry afterwards makes a passed proposal fail. Anyone may execute
/// a passed proposal, which publishes the new version and closes the old one. Customers sign a terms
/// version, so an agreement keeps the terms it signed whatever is voted later.
///
///     createOffer ──► Draft ──setComponent (each provider), openOffer──► Open ──retireOffer──► Retired
///                                                                        │ ▲
///                                        propose, vote (providers, owner)┘ └ execute (anyone): new version
interface IOfferBook {
    /// @notice The pricing models. Division of income, consensus decisions and constraints apply to every
    /// offer, so of the seven models of the architecture note four remain that differ in what is bought.
    enum Model {
        FixedPrice,
        DynamicPrice,
        TimeLimited,
        FlexiblePeriod
    }

    /// @notice The life of an offer. `None` means the id was never used.
    enum OfferStatus {
        None,
        Draft,
        Open,
        Retired
    }

    /// @notice One provider's part of an offer's price, in the model's price unit.
    struct Share {
        uint32 providerId;
        uint88 component;
    }

    /// @notice What the owner fixes when drafting an offer (see {IConferenceEscrow-Terms} for each field).
    struct OfferParams {
        Model model;
        uint8 tokenId;
        uint40 maxDuration;
        uint88 margin;
        uint88 minimumCharge;
        uint16 gdprSurchargeBps;
        uint16 regionSurchargeBps;
    }

    /// @notice An offer: its owner, where it is in its life, its terms as drafted, and the id of its
    /// current terms version in the escrow (0 while a draft).
    struct Offer {
        address owner;
        OfferStatus status;
        uint32 termsId;
        OfferParams params;
        Share[] shares;
    }

    /// @notice What a proposal would change. It applies to the terms current when it was made.
    /// @param yesVotes The yes votes of members of the base terms (the quorum's count).
    /// @param electorate The members of the base terms that had not left the registry when it was made.
    /// @param gdpr Whether every provider of `shares` was GDPR-compliant when it was made.
    /// @param regions The regions every provider of `shares` served when it was made.
    struct Proposal {
        uint32 offerId;
        uint32 baseTermsId;
        uint40 deadline;
        uint8 yesVotes;
        uint8 electorate;
        bool executed;
        bool gdpr;
        uint32 regions;
        uint88 margin;
        uint88 minimumCharge;
        Share[] shares;
    }

    /// @notice Emitted when the owner drafts an offer.
    event OfferCreated(uint32 indexed offerId, address indexed owner, Model model, uint8 tokenId);

    /// @notice Emitted when a provider sets its price component of a draft offer.
    event ComponentSet(uint32 indexed offerId, uint32 indexed providerId, uint256 component);

    /// @notice Emitted when the owner opens a draft: its first terms version is published in the escrow.
    event OfferOpened(uint32 indexed offerId, uint32 indexed termsId);

    /// @notice Emitted when the owner retires an offer; agreements already signed are not affected.
    event OfferRetired(uint32 indexed offerId);

    /// @notice Emitted when a provider proposes new shared terms for an offer.
    event ProposalCreated(uint256 indexed proposalId, uint32 indexed offerId, uint32 proposerId, uint256 deadline);

    /// @notice Emitted when a provider votes; `providerId` 0 is the offer's owner.
    event Voted(uint256 indexed proposalId, uint32 indexed providerId, bool support);

    /// @notice Emitted when a passed proposal is executed: `termsId` is the new version.
    event ProposalExecuted(uint256 indexed proposalId, uint32 indexed termsId);

    /// @notice Drafts an offer with the caller as owner.
    /// @dev Requirements: the caller has the escrow's OFFER_ADMIN_ROLE; `maxDuration` is not zero;
    /// `tokenId` names a payment token of the escrow; 1 to MAX_SHARES distinct active providers; a minimum
    /// charge exactly when the model is FlexiblePeriod. Emits {OfferCreated}.
    function createOffer(OfferParams calldata params, uint32[] calldata providerIds) external returns (uint32 offerId);

    /// @notice Sets the caller's price component of a draft offer.
    /// @dev Requirements: the offer is a draft; the caller is the account of one of its providers;
    /// `component` is not zero. Emits {ComponentSet}.
    function setComponent(uint32 offerId, uint88 component) external;

    /// @notice Opens a draft offer: publishes its first terms version in the escrow.
    /// @dev Requirements: the caller owns the offer; it is a draft; every provider has set its component
    /// and is still active; the providers serve at least one region in common. Emits {OfferOpened} (and the
    /// escrow emits {IConferenceEscrow-TermsPublished}).
    function openOffer(uint32 offerId) external returns (uint32 termsId);

    /// @notice Closes an offer to new agreements for good.
    /// @dev Requirements: the caller owns the offer; it is a draft or open. Emits {OfferRetired}.
    function retireOffer(uint32 offerId) external;

    /// @notice Proposes new shared terms for an open offer. The vote closes VOTING_PERIOD seconds from now. The
    /// new terms' price, regions and GDPR status are computed now (see the contract's notes).
    /// @dev Requirements: the offer is open; the caller is the account of one of its current providers and
    /// has not left the registry; the new shares are valid as in {createOffer} (1 to MAX_SHARES distinct
    /// active providers), with non-zero components and at least one region in common; a minimum charge
    /// exactly when the model is FlexiblePeriod. Emits {ProposalCreated}.
    function propose(uint32 offerId, Share[] calldata shares, uint88 margin, uint88 minimumCharge)
        external
        returns (uint256 proposalId);

    /// @notice Votes on a proposal: as a provider (a member of the current terms, or one the proposal adds)
    /// and, if the caller owns the offer, as its owner.
    /// @dev Requirements: the deadline has not passed and it is not executed; the caller is the account of a
    /// current or proposed provider that has not left the registry, or the offer's owner; it has not voted on
    /// it. Emits {Voted} (for each capacity the caller votes in).
    function vote(uint256 proposalId, bool support) external;

    /// @notice Executes a passed proposal: publishes the terms computed when it was made. Anyone may call it.
    /// @dev Requirements: it passed (see {hasPassed}): nothing else is checked, so no change to the registry
    /// can stop it. Emits {ProposalExecuted}.
    function execute(uint256 proposalId) external returns (uint32 termsId);

    /// @notice Whether `proposalId` has passed, i.e. {execute} would succeed now: not executed, still based on
    /// the offer's current terms, a quorum of yes votes and every consent it needs (see the contract's notes).
    function hasPassed(uint256 proposalId) external view returns (bool);

    /// @notice The offer `offerId`; reverts if there is none. `shares`, `params.margin` and
    /// `params.minimumCharge` are those of its current terms version once it is open (of its last one once
    /// retired), as drafted before.
    function offerOf(uint32 offerId) external view returns (Offer memory);

    /// @notice The proposal `proposalId`; reverts if there is none.
    function proposalOf(uint256 proposalId) external view returns (Proposal memory);

    /// @notice The number of offers ever drafted (the highest id).
    function offerCount() external view returns (uint32);

    /// @notice The number of proposals ever made (the highest id).
    function proposalCount() external view returns (uint256);
}
