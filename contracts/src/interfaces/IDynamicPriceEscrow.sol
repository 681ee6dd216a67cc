// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IDynamicPriceEscrow
/// @notice Escrow for conferences sold at a dynamic price: the customer locks price × maximum duration,
/// is charged only for the seconds the conference ran, and gets the rest back at settlement. Everything
/// comes back if the measured availability fell below 75%, if the service never started the conference,
/// or if the customer cancelled before it started.
/// @dev Lifecycle of an agreement (one `status` field, transitions only through the functions below):
///
///     sign ──► Signed ──activate──► Active ──stop / end──► Ended ──settle / settleOverdue──► Settled
///                 │
///                 └── cancel (customer) / decline (operator) / reclaim (after the activation window) ──► Refunded
///
/// Money only ever moves to the agreement's customer (refunds) or to the offer's provider (income); the
/// provider's income and any refund that could not be pushed are credited to a pull ledger (`withdrawable`).
interface IDynamicPriceEscrow {
    /// @notice The status of an agreement. `None` means the id was never used.
    enum Status {
        None,
        Signed,
        Active,
        Ended,
        Settled,
        Refunded
    }

    /// @notice Why an agreement that never started was refunded in full.
    enum RefundReason {
        CancelledByCustomer,
        DeclinedByOperator,
        ActivationTimedOut
    }

    /// @notice The terms of an offer. Offers are immutable once published; the owner retires one and
    /// publishes another to change terms, so signed agreements always keep the terms they signed.
    struct Offer {
        address provider;
        uint64 maxDuration;
        bool retired;
        uint128 pricePerSecond;
    }

    /// @notice One agreement, packed into two storage slots.
    struct Agreement {
        address customer;
        uint32 offerId;
        uint40 signedAt;
        Status status;
        uint16 availabilityBps;
        uint40 startedAt;
        uint40 endedAt;
    }

    /// @notice Emitted when the owner publishes an offer.
    event OfferPublished(uint256 indexed offerId, address indexed provider, uint256 pricePerSecond, uint256 maxDuration);

    /// @notice Emitted when the owner retires an offer; agreements already signed are not affected.
    event OfferRetired(uint256 indexed offerId);

    /// @notice Emitted when a customer signs an agreement by paying its deposit.
    event AgreementSigned(uint256 indexed agreementId, uint256 indexed offerId, address indexed customer, uint256 deposit);

    /// @notice Emitted when the operator countersigns; the agreement's clock starts at `startedAt`.
    event AgreementActivated(uint256 indexed agreementId, uint256 startedAt);

    /// @notice Emitted when an active agreement ends, by the customer's stop or by expiry.
    event AgreementEnded(uint256 indexed agreementId, uint256 endedAt, address indexed endedBy);

    /// @notice Emitted when an agreement is settled: `charge` goes to the provider, `refund` to the customer.
    /// @param refundDeferred True when the refund could not be sent and was credited to the customer instead.
    event AgreementSettled(
        uint256 indexed agreementId, uint256 availabilityBps, uint256 charge, uint256 refund, bool refundDeferred
    );

    /// @notice Emitted when an agreement that never started is refunded in full.
    event AgreementRefunded(uint256 indexed agreementId, RefundReason reason, uint256 refund, bool refundDeferred);

    /// @notice Emitted when an account's withdrawable balance grows (provider income or a deferred refund).
    event Credited(address indexed account, uint256 amount);

    /// @notice Emitted when an account withdraws its balance.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice Publishes an offer.
    /// @dev Requirements: the caller is the owner; price, maximum duration and provider are non-zero.
    /// Emits {OfferPublished}.
    /// @param provider The provider's payout address; it withdraws the income of the offer's agreements.
    /// @param pricePerSecond Price in wei per second of conference.
    /// @param maxDuration The longest an agreement on this offer runs, in seconds.
    /// @return offerId The new offer's id, counting from 1.
    function publishOffer(address provider, uint128 pricePerSecond, uint64 maxDuration)
        external
        returns (uint256 offerId);

    /// @notice Retires an offer so that nobody can sign it any more.
    /// @dev Requirements: the caller is the owner; the offer exists. Emits {OfferRetired}.
    /// @param offerId The offer to retire.
    function retireOffer(uint256 offerId) external;

    /// @notice Pauses or resumes signing. Pausing stops new agreements only, never refunds or withdrawals.
    /// @dev Requirements: the caller is the owner.
    /// @param paused True to pause.
    function setPaused(bool paused) external;

    /// @notice Signs an agreement on an offer by paying its deposit, price × maximum duration.
    /// @dev Requirements: not paused; the offer exists and is not retired; `msg.value` equals the deposit.
    /// Emits {AgreementSigned}.
    /// @param offerId The offer to sign.
    /// @return agreementId The new agreement's id, counting from 1.
    function sign(uint256 offerId) external payable returns (uint256 agreementId);

    /// @notice Countersigns an agreement once its conference answers; its clock starts now.
    /// @dev Requirements: the caller has the operator role; the agreement is Signed; the activation window
    /// (counted from signing) is still open. Emits {AgreementActivated}.
    /// @param agreementId The agreement to activate.
    function activate(uint256 agreementId) external;

    /// @notice Ends an active agreement now, or cancels a signed one that has not started (full refund).
    /// @dev Requirements: the caller is the agreement's customer; the agreement is Signed or Active.
    /// Emits {AgreementEnded}, or {AgreementRefunded} for a cancellation.
    /// @param agreementId The agreement to stop.
    function stop(uint256 agreementId) external;

    /// @notice Ends an active agreement whose maximum duration has passed. Anyone may call it: contracts
    /// cannot wake themselves, so the expiry must be permissionless.
    /// @dev Requirements: the agreement is Active; `block.timestamp >= startedAt + maxDuration`.
    /// Emits {AgreementEnded} with `endedAt = startedAt + maxDuration`.
    /// @param agreementId The agreement to end.
    function end(uint256 agreementId) external;

    /// @notice Refuses a signed agreement the service cannot run; the customer gets the deposit back.
    /// @dev Requirements: the caller has the operator role; the agreement is Signed. Emits {AgreementRefunded}.
    /// @param agreementId The agreement to decline.
    function decline(uint256 agreementId) external;

    /// @notice Returns the whole deposit of an agreement the operator did not activate in time.
    /// Anyone may call it; the money goes to the customer.
    /// @dev Requirements: the agreement is Signed; `block.timestamp > signedAt + activationWindow`.
    /// Emits {AgreementRefunded}.
    /// @param agreementId The agreement to refund.
    function reclaim(uint256 agreementId) external;

    /// @notice Settles an ended agreement with the availability the service measured.
    /// @dev charge = pricePerSecond × (endedAt − startedAt), or 0 if `availabilityBps < 7500`;
    /// refund = deposit − charge. The charge is credited to the provider; the refund is sent to the customer,
    /// or credited to the customer if the transfer fails.
    /// Requirements: the caller has the operator role; the agreement is Ended; `availabilityBps <= 10000`.
    /// Emits {AgreementSettled} and {Credited}.
    /// @param agreementId The agreement to settle.
    /// @param availabilityBps The measured availability over the agreement's running time, in basis points.
    function settle(uint256 agreementId, uint16 availabilityBps) external;

    /// @notice Settles an ended agreement the operator left unsettled past the settlement window, at full
    /// availability (the on-chain times are all there is to go by). Anyone may call it.
    /// @dev Requirements: the agreement is Ended; `block.timestamp > endedAt + settlementWindow`.
    /// Emits {AgreementSettled} and {Credited}.
    /// @param agreementId The agreement to settle.
    function settleOverdue(uint256 agreementId) external;

    /// @notice Sends the caller everything credited to it: provider income and deferred refunds.
    /// @dev Requirements: the caller's balance is non-zero; the transfer succeeds. Emits {Withdrawn}.
    function withdraw() external;

    /// @notice The operator role's identifier, for `grantRole` / `revokeRole`.
    function OPERATOR_ROLE() external view returns (bytes32);

    /// @notice Seconds the operator has, from signing, to activate an agreement.
    function activationWindow() external view returns (uint64);

    /// @notice Seconds the operator has, from an agreement's end, to settle it.
    function settlementWindow() external view returns (uint64);

    /// @notice Availability below this many basis points refunds the customer in full (7500 = 75%).
    function MIN_AVAILABILITY_BPS() external view returns (uint16);

    /// @notice The number of offers published so far; ids run from 1 to this.
    function offerCount() external view returns (uint256);

    /// @notice The number of agreements signed so far; ids run from 1 to this.
    function agreementCount() external view returns (uint256);

    /// @notice An offer's terms.
    function getOffer(uint256 offerId) external view returns (Offer memory);

    /// @notice An agreement's record.
    function getAgreement(uint256 agreementId) external view returns (Agreement memory);

    /// @notice The deposit an agreement locked: its offer's price × maximum duration.
    function depositOf(uint256 agreementId) external view returns (uint256);

    /// @notice What an account can withdraw now.
    function withdrawable(address account) external view returns (uint256);
}
