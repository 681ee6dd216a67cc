// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDynamicPriceEscrow} from "./interfaces/IDynamicPriceEscrow.sol";
import {Errors} from "./libraries/Errors.sol";

/// @title DynamicPriceEscrow
/// @notice See {IDynamicPriceEscrow}. One long-lived contract holds every agreement as an entry, so an
/// agreement costs storage slots, not a contract deployment, and auditors have one address to read.
/// @dev Roles: DEFAULT_ADMIN_ROLE (the owner: publishes offers, pauses, manages roles) and OPERATOR_ROLE
/// (the backend's hot key: activates, declines, settles). Neither can move escrow anywhere but to the
/// agreement's customer or its offer's provider.
contract DynamicPriceEscrow is IDynamicPriceEscrow, AccessControl, Pausable, ReentrancyGuardTransient {
    /// @inheritdoc IDynamicPriceEscrow
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @inheritdoc IDynamicPriceEscrow
    uint16 public constant MIN_AVAILABILITY_BPS = 7500;

    uint16 private constant FULL_AVAILABILITY_BPS = 10_000;

    /// @dev Gas forwarded with a pushed refund: enough for a smart-contract wallet's receive hook, too
    /// little for a recipient to grief the settlement; a refund that fails is credited instead.
    uint256 private constant REFUND_GAS = 50_000;

    /// @inheritdoc IDynamicPriceEscrow
    uint64 public immutable activationWindow;

    /// @inheritdoc IDynamicPriceEscrow
    uint64 public immutable settlementWindow;

    /// @inheritdoc IDynamicPriceEscrow
    uint256 public offerCount;

    /// @inheritdoc IDynamicPriceEscrow
    uint256 public agreementCount;

    /// @inheritdoc IDynamicPriceEscrow
    mapping(address account => uint256 amount) public withdrawable;

    mapping(uint256 offerId => Offer) private _offers;
    mapping(uint256 agreementId => Agreement) private _agreements;

    /// @param owner Receives DEFAULT_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE.
    /// @param activationWindow_ Seconds from signing within which the operator must activate.
    /// @param settlementWindow_ Seconds from the end within which the operator must settle.
    constructor(address owner, address operator, uint64 activationWindow_, uint64 settlementWindow_) {
        if (owner == address(0) || operator == address(0) || activationWindow_ == 0 || settlementWindow_ == 0) {
            revert Errors.Escrow_InvalidConfiguration();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, owner);
        _grantRole(OPERATOR_ROLE, operator);
        activationWindow = activationWindow_;
        settlementWindow = settlementWindow_;
    }

    // ---------------------------------------------------------------------------------------------
    // Owner
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IDynamicPriceEscrow
    function publishOffer(address provider, uint128 pricePerSecond, uint64 maxDuration)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint256 offerId)
    {
        if (provider == address(0) || pricePerSecond == 0 || maxDuration == 0) {
            revert Errors.Escrow_InvalidOffer(pricePerSecond, maxDuration, provider);
        }
        offerId = ++offerCount;
        // Agreements store their offer id in 32 bits; refuse the offer that would not fit.
        SafeCast.toUint32(offerId);
        _offers[offerId] =
            Offer({provider: provider, maxDuration: maxDuration, retired: false, pricePerSecond: pricePerSecond});
        emit OfferPublished(offerId, provider, pricePerSecond, maxDuration);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function retireOffer(uint256 offerId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _offer(offerId).retired = true;
        emit OfferRetired(offerId);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function setPaused(bool paused_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (paused_) _pause();
        else _unpause();
    }

    // ---------------------------------------------------------------------------------------------
    // Customer
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IDynamicPriceEscrow
    function sign(uint256 offerId) external payable whenNotPaused returns (uint256 agreementId) {
        Offer storage offer = _offer(offerId);
        if (offer.retired) revert Errors.Escrow_OfferRetired(offerId);
        uint256 deposit = uint256(offer.pricePerSecond) * offer.maxDuration;
        if (msg.value != deposit) revert Errors.Escrow_WrongDeposit(deposit, msg.value);

        agreementId = ++agreementCount;
        // The casts below are safe: offer ids fit in 32 bits (checked when published) and block
        // timestamps fit in 40 bits until the year 36812.
        // forge-lint: disable-start(unsafe-typecast)
        _agreements[agreementId] = Agreement({
            customer: msg.sender,
            offerId: uint32(offerId),
            signedAt: uint40(block.timestamp),
            status: Status.Signed,
            availabilityBps: 0,
            startedAt: 0,
            endedAt: 0
        });
        // forge-lint: disable-end(unsafe-typecast)
        emit AgreementSigned(agreementId, offerId, msg.sender, deposit);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function stop(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        if (msg.sender != agreement.customer) revert Errors.Escrow_NotCustomer(agreementId, msg.sender);
        if (agreement.status == Status.Signed) {
            _refundUnstarted(agreementId, agreement, RefundReason.CancelledByCustomer);
            return;
        }
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 expiresAt = _expiresAt(agreement);
        _end(agreementId, agreement, block.timestamp < expiresAt ? block.timestamp : expiresAt);
    }

    // ---------------------------------------------------------------------------------------------
    // Operator
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IDynamicPriceEscrow
    function activate(uint256 agreementId) external onlyRole(OPERATOR_ROLE) {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Signed);
        uint256 deadline = uint256(agreement.signedAt) + activationWindow;
        if (block.timestamp > deadline) revert Errors.Escrow_ActivationWindowClosed(agreementId, deadline);
        agreement.status = Status.Active;
        // forge-lint: disable-next-line(unsafe-typecast)
        agreement.startedAt = uint40(block.timestamp);
        emit AgreementActivated(agreementId, block.timestamp);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function decline(uint256 agreementId) external onlyRole(OPERATOR_ROLE) nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Signed);
        _refundUnstarted(agreementId, agreement, RefundReason.DeclinedByOperator);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function settle(uint256 agreementId, uint16 availabilityBps) external onlyRole(OPERATOR_ROLE) nonReentrant {
        if (availabilityBps > FULL_AVAILABILITY_BPS) revert Errors.Escrow_InvalidAvailability(availabilityBps);
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Ended);
        _settle(agreementId, agreement, availabilityBps);
    }

    // ---------------------------------------------------------------------------------------------
    // Anyone
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IDynamicPriceEscrow
    function end(uint256 agreementId) external {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 expiresAt = _expiresAt(agreement);
        if (block.timestamp < expiresAt) revert Errors.Escrow_NotExpired(agreementId, expiresAt);
        _end(agreementId, agreement, expiresAt);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function reclaim(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Signed);
        uint256 deadline = uint256(agreement.signedAt) + activationWindow;
        if (block.timestamp <= deadline) revert Errors.Escrow_ActivationWindowOpen(agreementId, deadline);
        _refundUnstarted(agreementId, agreement, RefundReason.ActivationTimedOut);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function settleOverdue(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Ended);
        uint256 deadline = uint256(agreement.endedAt) + settlementWindow;
        if (block.timestamp <= deadline) revert Errors.Escrow_SettlementWindowOpen(agreementId, deadline);
        _settle(agreementId, agreement, FULL_AVAILABILITY_BPS);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function withdraw() external nonReentrant {
        uint256 amount = withdrawable[msg.sender];
        if (amount == 0) revert Errors.Escrow_NothingToWithdraw(msg.sender);
        withdrawable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert Errors.Escrow_TransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IDynamicPriceEscrow
    function getOffer(uint256 offerId) external view returns (Offer memory) {
        return _offer(offerId);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function getAgreement(uint256 agreementId) external view returns (Agreement memory) {
        return _agreement(agreementId);
    }

    /// @inheritdoc IDynamicPriceEscrow
    function depositOf(uint256 agreementId) external view returns (uint256) {
        return _deposit(_agreement(agreementId));
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: every status change happens below.
    // ---------------------------------------------------------------------------------------------

    function _end(uint256 agreementId, Agreement storage agreement, uint256 endedAt) private {
        agreement.status = Status.Ended;
        // forge-lint: disable-next-line(unsafe-typecast)
        agreement.endedAt = uint40(endedAt);
        emit AgreementEnded(agreementId, endedAt, msg.sender);
    }

    function _settle(uint256 agreementId, Agreement storage agreement, uint16 availabilityBps) private {
        Offer storage offer = _offers[agreement.offerId];
        uint256 deposit = uint256(offer.pricePerSecond) * offer.maxDuration;
        // endedAt is capped at startedAt + maxDuration when the agreement ends, so charge <= deposit.
        uint256 charge = availabilityBps < MIN_AVAILABILITY_BPS
            ? 0
            : uint256(offer.pricePerSecond) * (agreement.endedAt - agreement.startedAt);
        uint256 refund = deposit - charge;

        agreement.status = Status.Settled;
        agreement.availabilityBps = availabilityBps;
        if (charge != 0) _credit(offer.provider, charge);
        bool deferred = _pushRefund(agreement.customer, refund);
        emit AgreementSettled(agreementId, availabilityBps, charge, refund, deferred);
    }

    function _refundUnstarted(uint256 agreementId, Agreement storage agreement, RefundReason reason) private {
        uint256 refund = _deposit(agreement);
        agreement.status = Status.Refunded;
        bool deferred = _pushRefund(agreement.customer, refund);
        emit AgreementRefunded(agreementId, reason, refund, deferred);
    }

    /// @dev Sends a refund with bounded gas and without copying return data; credits it on failure, so a
    /// customer whose address cannot receive never blocks a settlement. Returns true when credited.
    function _pushRefund(address customer, uint256 amount) private returns (bool deferred) {
        if (amount == 0) return false;
        bool ok;
        assembly ("memory-safe") {
            ok := call(REFUND_GAS, customer, amount, 0, 0, 0, 0)
        }
        if (!ok) _credit(customer, amount);
        return !ok;
    }

    function _credit(address account, uint256 amount) private {
        withdrawable[account] += amount;
        emit Credited(account, amount);
    }

    function _offer(uint256 offerId) private view returns (Offer storage offer) {
        offer = _offers[offerId];
        if (offer.provider == address(0)) revert Errors.Escrow_UnknownOffer(offerId);
    }

    function _agreement(uint256 agreementId) private view returns (Agreement storage agreement) {
        agreement = _agreements[agreementId];
        if (agreement.status == Status.None) revert Errors.Escrow_UnknownAgreement(agreementId);
    }

    function _requireStatus(uint256 agreementId, Agreement storage agreement, Status expected) private view {
        if (agreement.status != expected) revert Errors.Escrow_WrongStatus(agreementId, agreement.status);
    }

    function _deposit(Agreement storage agreement) private view returns (uint256) {
        Offer storage offer = _offers[agreement.offerId];
        return uint256(offer.pricePerSecond) * offer.maxDuration;
    }

    function _expiresAt(Agreement storage agreement) private view returns (uint256) {
        return uint256(agreement.startedAt) + _offers[agreement.offerId].maxDuration;
    }
}
