// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IConferenceEscrow} from "../interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../interfaces/IOfferBook.sol";

/// @title Errors
/// @notice Every custom error of the contracts, in one place, named after the contract that throws it.
library Errors {
    // ---------------------------------------------------------------------------------------------
    // ProviderRegistry
    // ---------------------------------------------------------------------------------------------

    /// @notice Thrown when an account that already has a provider id registers again.
    error Registry_AlreadyRegistered(address account, uint32 providerId);

    /// @notice Thrown when a provider gives a zero payout address or serves no region.
    error Registry_InvalidProvider(address payout, uint32 regions);

    /// @notice Thrown when an account that is not an active provider leaves.
    error Registry_NotActiveProvider(address account);

    /// @notice Thrown when an account that never registered updates a provider.
    error Registry_NotRegistered(address account);

    /// @notice Thrown when a provider id was never registered.
    error Registry_UnknownProvider(uint32 providerId);

    // ---------------------------------------------------------------------------------------------
    // OfferBook
    // ---------------------------------------------------------------------------------------------

    /// @notice Thrown when terms are malformed: a zero maximum duration, an unknown token, no providers or
    /// more than MAX_SHARES, a zero component, a price (components plus margin) beyond 88 bits, or a minimum
    /// charge on a model other than FlexiblePeriod (or none on a FlexiblePeriod offer).
    error OfferBook_InvalidTerms();

    /// @notice Thrown when an offer's providers would include a second provider with the Monitoring role.
    error OfferBook_SecondMonitor(uint32 providerId);

    /// @notice Thrown when an offer id was never used.
    error OfferBook_UnknownOffer(uint32 offerId);

    /// @notice Thrown when a terms id was never used.
    error OfferBook_UnknownTerms(uint32 termsId);

    /// @notice Thrown when a proposal id was never used.
    error OfferBook_UnknownProposal(uint256 proposalId);

    /// @notice Thrown when someone other than the offer's owner opens or retires it.
    error OfferBook_NotOwner(uint32 offerId, address caller);

    /// @notice Thrown when an offer is not in the status the call needs.
    error OfferBook_WrongOfferStatus(uint32 offerId, IOfferBook.OfferStatus status);

    /// @notice Thrown when the caller is not the account of one of the offer's current providers (or, to
    /// propose, one that has left the registry).
    error OfferBook_NotAProvider(uint32 offerId, address caller);

    /// @notice Thrown when an account without the escrow's OFFER_ADMIN_ROLE drafts an offer.
    error OfferBook_NotOfferAdmin(address caller);

    /// @notice Thrown when the same provider is named twice in one set of shares.
    error OfferBook_DuplicateProvider(uint32 providerId);

    /// @notice Thrown when a provider named in terms has left the registry (or was never registered).
    error OfferBook_ProviderInactive(uint32 providerId);

    /// @notice Thrown when an offer opens before every provider has set its component.
    error OfferBook_ComponentMissing(uint32 offerId, uint32 providerId);

    /// @notice Thrown when an offer's providers have no region in common.
    error OfferBook_NoCommonRegion(uint32 offerId);

    /// @notice Thrown when a vote comes after the deadline or after execution.
    error OfferBook_VoteClosed(uint256 proposalId, uint256 deadline);

    /// @notice Thrown when the caller is neither the offer's owner nor a current or proposed provider of the
    /// offer that has not left the registry.
    error OfferBook_NotAVoter(uint256 proposalId, address caller);

    /// @notice Thrown when a provider (or the owner, provider id 0) votes twice on one proposal.
    error OfferBook_AlreadyVoted(uint256 proposalId, uint32 providerId);

    /// @notice Thrown when a proposal is executed a second time.
    error OfferBook_AlreadyExecuted(uint256 proposalId);

    /// @notice Thrown when the offer's terms changed, or it was retired, since the proposal was made.
    error OfferBook_ProposalStale(uint256 proposalId);

    /// @notice Thrown when no more than half the proposal's electorate voted yes.
    error OfferBook_NoQuorum(uint256 proposalId, uint8 yesVotes);

    /// @notice Thrown when a party whose consent the proposal needs has not voted yes: a provider it adds, a
    /// member whose component or part of the minimum charge it lowers, or (`providerId` 0) the offer's owner
    /// when it changes the margin or lowers the owner's part of the minimum charge.
    error OfferBook_ConsentMissing(uint256 proposalId, uint32 providerId);

    // ---------------------------------------------------------------------------------------------
    // ConferenceEscrow
    // ---------------------------------------------------------------------------------------------

    /// @notice Thrown when the contract is deployed with a zero address or a zero window.
    error Escrow_InvalidConfiguration();

    /// @notice Thrown when anyone but the offer book publishes or closes terms.
    error Escrow_NotOfferBook(address caller);

    /// @notice Thrown when the admin adds an address without code as a token, or a 256th token.
    error Escrow_InvalidToken(address token);

    /// @notice Thrown when signing while the admin has paused signing.
    error Escrow_Paused();

    /// @notice Thrown when the terms are not open for signing (a draft, replaced by a vote, retired, unknown).
    error Escrow_TermsNotOpen(uint32 termsId);

    /// @notice Thrown when a signing function does not match the terms' pricing model.
    error Escrow_WrongModel(uint32 termsId, IOfferBook.Model model);

    /// @notice Thrown when the minutes bought are zero or more than the terms allow (or a quote asks for more
    /// than 2^40 seconds).
    error Escrow_InvalidQuantity(uint256 minuteCount);

    /// @notice Thrown when a reserved window is empty, already over, or longer than the terms allow.
    error Escrow_InvalidWindow(uint256 from, uint256 to);

    /// @notice Thrown when the constraints leave no region the terms serve.
    error Escrow_NoRegionAllowed(uint32 termsId, uint32 allowedRegions);

    /// @notice Thrown when the customer requires GDPR compliance and some provider of the terms is not.
    error Escrow_GdprUnavailable(uint32 termsId);

    /// @notice Thrown when the payment differs from the deposit (or ETH is sent to an ERC-20 offer).
    error Escrow_WrongDeposit(uint256 expected, uint256 sent);

    /// @notice Thrown when an ERC-20 delivers a different amount than was transferred (fee on transfer).
    error Escrow_UnsupportedToken(address token, uint256 expected, uint256 received);

    /// @notice Thrown when an agreement id was never used.
    error Escrow_UnknownAgreement(uint256 agreementId);

    /// @notice Thrown when someone other than the agreement's customer calls a customer-only function.
    error Escrow_NotCustomer(uint256 agreementId, address caller);

    /// @notice Thrown when a transition is asked of an agreement in a status that does not allow it.
    error Escrow_WrongStatus(uint256 agreementId, IConferenceEscrow.Status status);

    /// @notice Thrown when a TimeLimited session is started with no minutes left.
    error Escrow_NoMinutesLeft(uint256 agreementId);

    /// @notice Thrown when a FlexiblePeriod conference is started or activated outside its window.
    error Escrow_OutsideWindow(uint256 agreementId, uint256 from, uint256 to);

    /// @notice Thrown when an unused FlexiblePeriod window (or a start that lapses with it) is settled before
    /// the window is over.
    error Escrow_WindowOpen(uint256 agreementId, uint256 to);

    /// @notice Thrown when the operator activates after the activation window has closed.
    error Escrow_ActivationWindowClosed(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when the operator names a region the agreement's constraints exclude.
    error Escrow_RegionNotAllowed(uint256 agreementId, uint8 region, uint32 allowedRegions);

    /// @notice Thrown when someone reclaims before the activation window has closed.
    error Escrow_ActivationWindowOpen(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when anyone ends a conference before its end time.
    error Escrow_NotExpired(uint256 agreementId, uint256 endsAt);

    /// @notice Thrown when availability is above 10,000 basis points.
    error Escrow_InvalidAvailability(uint16 availabilityBps);

    /// @notice Thrown when a settlement of an offer with a monitor carries no valid report from it (signed by
    /// anyone else, or over another agreement, conference, period, figure or evidence).
    error Escrow_InvalidReport(uint256 agreementId);

    /// @notice Thrown when a settlement of an offer without a monitor carries a report.
    error Escrow_NoMonitor(uint256 agreementId);

    /// @notice Thrown when a signed stop is submitted after its deadline.
    error Escrow_SignatureExpired(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when a signed stop is not the customer's signature over this conference.
    error Escrow_InvalidSignature(uint256 agreementId);

    /// @notice Thrown when someone settles an overdue agreement before the settlement window has closed.
    error Escrow_SettlementWindowOpen(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when an account with no credit in the token withdraws.
    error Escrow_NothingToWithdraw(address account, uint8 tokenId);

    /// @notice Thrown when a provider with no earnings in the token is paid out.
    error Escrow_NoEarnings(uint32 providerId, uint8 tokenId);

    /// @notice Thrown when someone other than the provider's account or its payout address pays out its
    /// earnings.
    error Escrow_NotProvider(uint32 providerId, address caller);

    /// @notice Thrown when an ETH withdrawal is refused by its recipient.
    error Escrow_TransferFailed(address to, uint256 amount);

    /// @notice Thrown when an order is opened after its deadline.
    error Escrow_OrderExpired(address customer, uint256 nonce, uint256 deadline);

    /// @notice Thrown when an order's nonce was already used or cancelled by its customer.
    error Escrow_OrderNonceUsed(address customer, uint256 nonce);

    /// @notice Thrown when an order is not its customer's signature (EIP-712 `Order`).
    error Escrow_InvalidOrderSignature(address customer, uint256 nonce);

    /// @notice Thrown when what an order locks is more than the most its customer allowed it to cost.
    error Escrow_OrderOverLimit(uint256 cost, uint256 maxCost);

    /// @notice Thrown when an account's free balance cannot cover an order's lock.
    error Escrow_InsufficientBalance(address customer, uint8 tokenId, uint256 needed, uint256 free);

    /// @notice Thrown when an account withdraws without a withdrawal request.
    error Escrow_NoWithdrawalRequested(address customer, uint8 tokenId);

    /// @notice Thrown when an account withdraws before its request has waited out the activation window.
    error Escrow_WithdrawalNotDue(address customer, uint8 tokenId, uint256 dueAt);

    /// @notice Thrown when a deposit into an account is zero or does not fit the account (2^128 - 1).
    error Escrow_InvalidAmount(uint256 amount);

    /// @notice Thrown when the escrow's annex is called at its own address instead of through the escrow.
    error Escrow_NotThroughEscrow();

    /// @notice Thrown when a call of a batch reverted without naming an error: it ran out of gas (the batch needs
    /// a higher gas limit) or names no function of the escrow. No call of the batch took effect.
    error Escrow_BatchCallWithoutReason(uint256 index);
}
