// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDynamicPriceEscrow} from "../interfaces/IDynamicPriceEscrow.sol";

/// @title Errors
/// @notice Every custom error of the escrow contracts, in one place.
library Errors {
    /// @notice Thrown when an offer is published with a zero price, a zero maximum duration or no provider.
    error Escrow_InvalidOffer(uint256 pricePerSecond, uint256 maxDuration, address provider);

    /// @notice Thrown when an offer id does not name a published offer.
    error Escrow_UnknownOffer(uint256 offerId);

    /// @notice Thrown when a customer signs an offer that has been retired.
    error Escrow_OfferRetired(uint256 offerId);

    /// @notice Thrown when the payment sent with `sign` differs from price × maximum duration.
    error Escrow_WrongDeposit(uint256 expected, uint256 sent);

    /// @notice Thrown when an agreement id does not name a signed agreement.
    error Escrow_UnknownAgreement(uint256 agreementId);

    /// @notice Thrown when a transition is asked of an agreement in a status that does not allow it.
    error Escrow_WrongStatus(uint256 agreementId, IDynamicPriceEscrow.Status status);

    /// @notice Thrown when someone other than the agreement's customer calls a customer-only function.
    error Escrow_NotCustomer(uint256 agreementId, address caller);

    /// @notice Thrown when the operator activates after the activation window has closed.
    error Escrow_ActivationWindowClosed(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when the customer reclaims a deposit before the activation window has closed.
    error Escrow_ActivationWindowOpen(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when `end` is called before the agreement's maximum duration has passed.
    error Escrow_NotExpired(uint256 agreementId, uint256 expiresAt);

    /// @notice Thrown when the operator reports an availability above 10,000 basis points.
    error Escrow_InvalidAvailability(uint256 availabilityBps);

    /// @notice Thrown when an overdue settlement is asked before the settlement window has closed.
    error Escrow_SettlementWindowOpen(uint256 agreementId, uint256 deadline);

    /// @notice Thrown when an account withdraws with nothing to withdraw.
    error Escrow_NothingToWithdraw(address account);

    /// @notice Thrown when a withdrawal's transfer fails.
    error Escrow_TransferFailed(address to, uint256 amount);

    /// @notice Thrown when the deployer passes a zero address or a zero window.
    error Escrow_InvalidConfiguration();
}
