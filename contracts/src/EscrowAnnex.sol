// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {EscrowState} from "./EscrowState.sol";
import {IConferenceEscrow} from "./interfaces/IConferenceEscrow.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Errors} from "./libraries/Errors.sol";

/// @dev The settings {ConferenceEscrow} keeps in its code, which the annex reads from it.
interface IEscrowSettings {
    function BOOK() external view returns (address);
    function REGISTRY() external view returns (IProviderRegistry);
    function ACTIVATION_WINDOW() external view returns (uint40);
}

/// @title EscrowAnnex
/// @notice Code of {ConferenceEscrow} that does not fit in its 24 KB (EIP-170): customer accounts (deposit,
/// withdrawal, orders and their opening), payouts (credits, providers' earnings), terms publishing and admin.
/// Deployed once, before the escrow (which takes its address), it holds no state: the escrow runs its
/// functions in the escrow's own storage and balance (DELEGATECALL), as if they were its own, so callers see
/// one contract, one address and one ABI ({IConferenceEscrow}).
/// @dev Called directly, at its own address, every function reverts: its own storage is empty and unused.
contract EscrowAnnex is EscrowState {
    using SafeERC20 for IERC20;

    /// @dev This contract's own address: a call running here is a direct call, not the escrow's.
    address private immutable SELF;

    constructor() {
        SELF = address(this);
    }

    modifier onlyInEscrow() {
        if (address(this) == SELF) revert Errors.Escrow_NotThroughEscrow();
        _;
    }

    /// @dev See {IConferenceEscrow-depositToAccount}.
    function depositToAccount(uint8 tokenId, uint256 amount) external payable onlyInEscrow nonReentrant {
        IConferenceEscrow.Account storage account = _accounts[msg.sender][tokenId];
        if (amount == 0 || amount > type(uint128).max - account.free - account.locked) {
            revert Errors.Escrow_InvalidAmount(amount);
        }
        if (tokenId != 0 && tokenId > _tokenCount) revert Errors.Escrow_InvalidToken(address(0));
        // forge-lint: disable-next-line(unsafe-typecast)
        account.free += uint128(amount);
        emit IConferenceEscrow.Deposited(msg.sender, tokenId, amount);
        _collect(tokenId, amount);
    }

    /// @dev See {IConferenceEscrow-requestWithdrawal}.
    function requestWithdrawal(uint8 tokenId, uint256 amount) external onlyInEscrow {
        IConferenceEscrow.Account storage account = _accounts[msg.sender][tokenId];
        account.withdrawal = SafeCast.toUint128(amount);
        account.withdrawalAt = amount == 0 ? 0 : _now();
        emit IConferenceEscrow.WithdrawalRequested(
            msg.sender, tokenId, amount, amount == 0 ? 0 : block.timestamp + _settings().ACTIVATION_WINDOW()
        );
    }

    /// @dev See {IConferenceEscrow-completeWithdrawal}.
    function completeWithdrawal(uint8 tokenId) external onlyInEscrow nonReentrant {
        IConferenceEscrow.Account storage account = _accounts[msg.sender][tokenId];
        uint256 requested = account.withdrawal;
        if (requested == 0) revert Errors.Escrow_NoWithdrawalRequested(msg.sender, tokenId);
        uint256 dueAt = uint256(account.withdrawalAt) + _settings().ACTIVATION_WINDOW();
        if (block.timestamp < dueAt) revert Errors.Escrow_WithdrawalNotDue(msg.sender, tokenId, dueAt);
        // `requested` was stored as a uint128.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 amount = account.free < requested ? account.free : uint128(requested);
        if (amount == 0) revert Errors.Escrow_NothingToWithdraw(msg.sender, tokenId);
        account.free -= amount;
        account.withdrawal = 0;
        account.withdrawalAt = 0;
        emit IConferenceEscrow.AccountWithdrawn(msg.sender, tokenId, amount);
        _send(tokenId, msg.sender, amount);
    }

    /// @dev See {IConferenceEscrow-cancelOrders}.
    function cancelOrders(uint256 word, uint256 mask) external onlyInEscrow {
        _orderNonces[msg.sender][word] |= mask;
        emit IConferenceEscrow.OrdersCancelled(msg.sender, word, mask);
    }

    /// @dev See {IConferenceEscrow-openOrder}.
    function openOrder(IConferenceEscrow.Order calldata order, address customer, bytes calldata signature)
        external
        onlyInEscrow
        onlyRole(OPERATOR_ROLE)
        returns (uint256 agreementId)
    {
        uint32 termsId = order.termsId;
        IConferenceEscrow.Terms storage terms = _signable(termsId);
        _useOrder(order, customer, signature);
        (uint24 surchargeBps, uint32 regions, uint8 flags) =
            _constrain(termsId, terms, order.allowedRegions, order.gdpr);
        uint256 amount = _fullDeposit(terms, surchargeBps);
        if (amount > order.maxCost) revert Errors.Escrow_OrderOverLimit(amount, order.maxCost);
        _lock(customer, terms.tokenId, amount);
        agreementId = _open(customer, termsId, regions, flags | FROM_ACCOUNT, 0, IConferenceEscrow.Status.Requested);
        _announceSigned(agreementId, customer, amount, terms, surchargeBps, regions, flags, terms.maxDuration);
        emit IConferenceEscrow.OrderFilled(agreementId, customer, order.nonce);
    }

    /// @dev See {IConferenceEscrow-withdraw}.
    function withdraw(uint8 tokenId) external onlyInEscrow nonReentrant {
        uint256 amount = _credits[msg.sender][tokenId];
        if (amount == 0) revert Errors.Escrow_NothingToWithdraw(msg.sender, tokenId);
        _credits[msg.sender][tokenId] = 0;
        emit IConferenceEscrow.Withdrawn(msg.sender, tokenId, amount);
        _send(tokenId, msg.sender, amount);
    }

    /// @dev See {IConferenceEscrow-withdrawEarnings}.
    function withdrawEarnings(uint32 providerId, uint8 tokenId) external onlyInEscrow nonReentrant {
        uint256 amount = _earnings[providerId][tokenId];
        if (amount == 0) revert Errors.Escrow_NoEarnings(providerId, tokenId);
        IProviderRegistry.Provider memory provider = _settings().REGISTRY().providerOf(providerId);
        address payout = provider.payout;
        // Only the provider decides when: a provider moving its payout away from a lost address must not be
        // front-run into paying that address.
        if (msg.sender != provider.account && msg.sender != payout) {
            revert Errors.Escrow_NotProvider(providerId, msg.sender);
        }
        _earnings[providerId][tokenId] = 0;
        emit IConferenceEscrow.EarningsWithdrawn(providerId, tokenId, payout, amount);
        _send(tokenId, payout, amount);
    }

    /// @dev Uses the order's nonce, once its deadline and its customer's signature are checked.
    function _useOrder(IConferenceEscrow.Order calldata order, address customer, bytes calldata signature) private {
        uint256 nonce = order.nonce;
        if (block.timestamp > order.deadline) revert Errors.Escrow_OrderExpired(customer, nonce, order.deadline);
        uint256 bit = uint256(1) << (nonce & 0xff);
        mapping(uint256 word => uint256 bits) storage nonces = _orderNonces[customer];
        uint256 used = nonces[nonce >> 8];
        if (used & bit != 0) revert Errors.Escrow_OrderNonceUsed(customer, nonce);
        if (!_signedByCustomer(customer, _orderDigest(order), signature)) {
            revert Errors.Escrow_InvalidOrderSignature(customer, nonce);
        }
        nonces[nonce >> 8] = used | bit;
    }

    /// @dev Moves `amount` of the customer's account from free to locked.
    function _lock(address customer, uint8 tokenId, uint256 amount) private {
        IConferenceEscrow.Account storage account = _accounts[customer][tokenId];
        uint128 free = account.free;
        if (amount > free) revert Errors.Escrow_InsufficientBalance(customer, tokenId, amount, free);
        // forge-lint: disable-next-line(unsafe-typecast)
        account.free = free - uint128(amount);
        // forge-lint: disable-next-line(unsafe-typecast)
        account.locked += uint128(amount);
    }

    /// @dev Pays a withdrawal; the caller asked for it, so a failure reverts (and blocks only the caller).
    function _send(uint8 tokenId, address to, uint256 amount) private {
        if (tokenId == 0) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert Errors.Escrow_TransferFailed(to, amount);
        } else {
            IERC20(_tokens[tokenId]).safeTransfer(to, amount);
        }
    }

    /// @dev See {IConferenceEscrow}.
    function publishTerms(IConferenceEscrow.Terms calldata terms, uint32 replacesTermsId)
        external
        onlyInEscrow
        returns (uint32 termsId)
    {
        if (msg.sender != _settings().BOOK()) revert Errors.Escrow_NotOfferBook(msg.sender);
        termsId = ++_termsCount;
        IConferenceEscrow.Terms storage stored = _terms[termsId];
        stored.price = terms.price;
        stored.maxDuration = terms.maxDuration;
        stored.offerId = terms.offerId;
        stored.regions = terms.regions;
        stored.gdprSurchargeBps = terms.gdprSurchargeBps;
        stored.regionSurchargeBps = terms.regionSurchargeBps;
        stored.model = terms.model;
        stored.tokenId = terms.tokenId;
        stored.gdpr = terms.gdpr;
        stored.open = true;
        stored.owner = terms.owner;
        stored.margin = terms.margin;
        stored.minimumCharge = terms.minimumCharge;
        stored.monitored = terms.monitor != address(0);
        stored.monitor = terms.monitor;
        for (uint256 i; i < terms.shares.length; ++i) {
            stored.shares.push(terms.shares[i]);
        }
        emit IConferenceEscrow.TermsPublished(
            termsId,
            terms.offerId,
            terms.model,
            terms.tokenId,
            terms.price,
            terms.maxDuration,
            terms.minimumCharge,
            terms.regions,
            terms.gdpr,
            terms.gdprSurchargeBps,
            terms.regionSurchargeBps,
            terms.monitor
        );
        if (replacesTermsId != 0) _closeTerms(replacesTermsId);
    }

    /// @dev See {IConferenceEscrow}.
    function closeTerms(uint32 termsId) external onlyInEscrow {
        if (msg.sender != _settings().BOOK()) revert Errors.Escrow_NotOfferBook(msg.sender);
        _closeTerms(termsId);
    }

    /// @dev See {IConferenceEscrow}.
    function addToken(address token) external onlyInEscrow onlyRole(DEFAULT_ADMIN_ROLE) returns (uint8 tokenId) {
        if (token.code.length == 0 || _tokenCount == type(uint8).max) revert Errors.Escrow_InvalidToken(token);
        tokenId = ++_tokenCount;
        _tokens[tokenId] = token;
        emit IConferenceEscrow.TokenAdded(tokenId, token);
    }

    /// @dev See {IConferenceEscrow}.
    function setPaused(bool paused_) external onlyInEscrow onlyRole(DEFAULT_ADMIN_ROLE) {
        _paused = paused_;
        emit IConferenceEscrow.PausedSet(paused_);
    }

    function _closeTerms(uint32 termsId) private {
        _terms[termsId].open = false;
        emit IConferenceEscrow.TermsClosed(termsId);
    }

    /// @dev The escrow's settings: this code runs at the escrow's address, so the escrow is `this`.
    function _settings() private view returns (IEscrowSettings) {
        return IEscrowSettings(address(this));
    }
}
