// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {OfferBook} from "./OfferBook.sol";
import {IConferenceEscrow} from "./interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "./interfaces/IOfferBook.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Errors} from "./libraries/Errors.sol";
import {Pricing} from "./libraries/Pricing.sol";

/// @title ConferenceEscrow
/// @notice See {IConferenceEscrow}. One long-lived contract holds every agreement as an entry (two storage
/// slots, three for TimeLimited and FlexiblePeriod), so an agreement costs storage, not a deployment.
/// @dev Roles: DEFAULT_ADMIN_ROLE (pauses signing, adds tokens, manages roles), OFFER_ADMIN_ROLE (drafts
/// offers) and OPERATOR_ROLE (the backend's hot key: activates, declines, settles). None of them has a path
/// that sends escrow anywhere but to the agreement's customer, or earnings anywhere but to the providers'
/// payout addresses and the offer owner.
contract ConferenceEscrow is IConferenceEscrow, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice May activate, decline and settle agreements.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice May draft offers in the offer book.
    bytes32 public constant OFFER_ADMIN_ROLE = keccak256("OFFER_ADMIN_ROLE");

    /// @notice The EIP-712 type a customer signs to stop a conference without paying gas. `session` names the
    /// conference: 1 + the sessions of the agreement settled before it ({MinutesAccount-sessions}).
    bytes32 public constant STOP_TYPEHASH =
        keccak256("Stop(uint256 agreementId,uint32 session,uint40 stoppedAt,uint40 deadline)");

    /// @notice The EIP-712 type a terms' monitor signs to report a conference's availability over its measured
    /// period, with the commitment to the probe records behind the figure (see {settle}).
    bytes32 public constant AVAILABILITY_TYPEHASH = keccak256(
        "Availability(uint256 agreementId,uint32 session,uint40 startedAt,uint40 endedAt,uint16 availabilityBps,bytes32 evidence)"
    );

    /// @dev Gas forwarded with a pushed ETH refund: enough for a smart-contract wallet's receive hook, too
    /// little for a recipient to grief the caller; a refund that fails is credited instead.
    uint256 private constant REFUND_GAS = 50_000;

    /// @notice The only source of terms: deployed here, so no key can publish terms past the providers.
    OfferBook public immutable BOOK;

    /// @notice Where providers are registered (and where their payout addresses are read).
    IProviderRegistry public immutable REGISTRY;

    /// @notice Seconds from a start request within which the operator must activate.
    uint40 public immutable ACTIVATION_WINDOW;

    /// @notice Seconds from a conference's end within which the operator must settle.
    uint40 public immutable SETTLEMENT_WINDOW;

    // Packed in one slot: signing reads and writes it once.
    uint64 private _agreementCount;
    /// @notice Whether signing is paused.
    bool public paused;
    uint8 private _tokenCount;

    /// @inheritdoc IConferenceEscrow
    uint32 public termsCount;

    mapping(uint8 tokenId => address token) private _tokens;
    mapping(uint32 termsId => Terms) private _terms;
    mapping(uint256 agreementId => Agreement) private _agreements;
    mapping(uint256 agreementId => MinutesAccount) private _minutesAccounts;
    mapping(uint256 agreementId => Window) private _windows;
    mapping(uint32 providerId => mapping(uint8 tokenId => uint256 amount)) private _earnings;
    mapping(address account => mapping(uint8 tokenId => uint256 amount)) private _credits;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and OFFER_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE.
    /// @param activationWindow Seconds the operator has to activate a requested start.
    /// @param settlementWindow Seconds the operator has to settle an ended conference.
    /// @param votingPeriod Seconds a proposal's vote stays open.
    constructor(
        address admin,
        address operator,
        IProviderRegistry registry,
        uint40 activationWindow,
        uint40 settlementWindow,
        uint40 votingPeriod
    ) EIP712("ConferenceEscrow", "1") {
        if (
            admin == address(0) || operator == address(0) || address(registry) == address(0) || activationWindow == 0
                || settlementWindow == 0
        ) {
            revert Errors.Escrow_InvalidConfiguration();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OFFER_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        ACTIVATION_WINDOW = activationWindow;
        SETTLEMENT_WINDOW = settlementWindow;
        REGISTRY = registry;
        BOOK = new OfferBook(this, registry, votingPeriod);
    }

    // ---------------------------------------------------------------------------------------------
    // Customer
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function sign(uint32 termsId, uint32 allowedRegions, bool gdpr)
        external
        payable
        nonReentrant
        returns (uint256 agreementId)
    {
        Terms storage terms = _signable(termsId);
        IOfferBook.Model model = terms.model;
        if (model != IOfferBook.Model.FixedPrice && model != IOfferBook.Model.DynamicPrice) {
            revert Errors.Escrow_WrongModel(termsId, model);
        }
        (uint24 surchargeBps, uint32 regions) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 duration = terms.maxDuration;
        uint256 deposit = Pricing.deposit(model, terms.price, surchargeBps, duration, 0);
        agreementId = _open(termsId, terms, regions, gdpr, surchargeBps, duration, Status.Requested);
        emit AgreementSigned(agreementId, termsId, msg.sender, deposit);
        _collect(terms.tokenId, deposit);
    }

    /// @inheritdoc IConferenceEscrow
    function buyMinutes(uint32 termsId, uint32 allowedRegions, bool gdpr, uint32 minuteCount)
        external
        payable
        nonReentrant
        returns (uint256 agreementId)
    {
        Terms storage terms = _signable(termsId);
        if (terms.model != IOfferBook.Model.TimeLimited) revert Errors.Escrow_WrongModel(termsId, terms.model);
        uint256 duration = uint256(minuteCount) * 60;
        if (minuteCount == 0 || duration > terms.maxDuration) revert Errors.Escrow_InvalidQuantity(minuteCount);
        (uint24 surchargeBps, uint32 regions) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 deposit = Pricing.deposit(IOfferBook.Model.TimeLimited, terms.price, surchargeBps, duration, 0);
        agreementId = _open(termsId, terms, regions, gdpr, surchargeBps, duration, Status.Idle);
        _minutesAccounts[agreementId].deposit = SafeCast.toUint88(deposit);
        emit AgreementSigned(agreementId, termsId, msg.sender, deposit);
        _collect(terms.tokenId, deposit);
    }

    /// @inheritdoc IConferenceEscrow
    function reserve(uint32 termsId, uint32 allowedRegions, bool gdpr, uint40 from, uint40 to)
        external
        payable
        nonReentrant
        returns (uint256 agreementId)
    {
        Terms storage terms = _signable(termsId);
        if (terms.model != IOfferBook.Model.FlexiblePeriod) revert Errors.Escrow_WrongModel(termsId, terms.model);
        if (from >= to || to <= block.timestamp || to - from > terms.maxDuration) {
            revert Errors.Escrow_InvalidWindow(from, to);
        }
        (uint24 surchargeBps, uint32 regions) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 minimumCharge = Pricing.surcharged(terms.minimumCharge, surchargeBps);
        uint256 deposit =
            Pricing.deposit(IOfferBook.Model.FlexiblePeriod, terms.price, surchargeBps, to - from, minimumCharge);
        agreementId = _open(termsId, terms, regions, gdpr, surchargeBps, to - from, Status.Idle);
        _windows[agreementId] = Window({from: from, to: to, minimumCharge: SafeCast.toUint88(minimumCharge)});
        emit AgreementSigned(agreementId, termsId, msg.sender, deposit);
        emit WindowReserved(agreementId, from, to);
        _collect(terms.tokenId, deposit);
    }

    /// @inheritdoc IConferenceEscrow
    function start(uint256 agreementId) external {
        Agreement storage agreement = _customersAgreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Idle);
        if (agreement.model == IOfferBook.Model.TimeLimited) {
            if (agreement.duration == 0) revert Errors.Escrow_NoMinutesLeft(agreementId);
        } else {
            // Only FlexiblePeriod agreements are Idle besides TimeLimited ones; an Idle one is not running.
            Window storage window = _windows[agreementId];
            if (block.timestamp < window.from || block.timestamp >= window.to) {
                revert Errors.Escrow_OutsideWindow(agreementId, window.from, window.to);
            }
        }
        agreement.status = Status.Requested;
        agreement.startedAt = _now();
        emit StartRequested(agreementId);
    }

    /// @inheritdoc IConferenceEscrow
    function stop(uint256 agreementId) external {
        Agreement storage agreement = _customersAgreement(agreementId);
        if (agreement.status == Status.Requested) return _callOff(agreementId, agreement);
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 endsAt = _endsAt(agreement);
        _end(agreementId, agreement, block.timestamp < endsAt ? block.timestamp : endsAt);
    }

    /// @inheritdoc IConferenceEscrow
    function close(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _customersAgreement(agreementId);
        if (agreement.model != IOfferBook.Model.TimeLimited) {
            revert Errors.Escrow_WrongModel(agreement.termsId, agreement.model);
        }
        _requireStatus(agreementId, agreement, Status.Idle);
        MinutesAccount storage account = _minutesAccounts[agreementId];
        uint256 refund = uint256(account.deposit) - account.charged;
        agreement.status = Status.Settled;
        bool deferred = _push(agreement.tokenId, agreement.customer, refund);
        emit AgreementClosed(agreementId, refund, deferred);
    }

    // ---------------------------------------------------------------------------------------------
    // Operator
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function activate(uint256 agreementId, uint8 region) external onlyRole(OPERATOR_ROLE) {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        uint256 deadline = uint256(agreement.startedAt) + ACTIVATION_WINDOW;
        if (block.timestamp > deadline) revert Errors.Escrow_ActivationWindowClosed(agreementId, deadline);
        if (region >= 32 || agreement.allowedRegions & (uint32(1) << region) == 0) {
            revert Errors.Escrow_RegionNotAllowed(agreementId, region, agreement.allowedRegions);
        }
        if (agreement.model == IOfferBook.Model.FlexiblePeriod) {
            // The conference may run until the window closes, however late it started.
            uint40 to = _windows[agreementId].to;
            if (block.timestamp >= to) revert Errors.Escrow_OutsideWindow(agreementId, _windows[agreementId].from, to);
            agreement.duration = to - _now();
        }
        agreement.status = Status.Active;
        agreement.region = region;
        agreement.startedAt = _now();
        emit AgreementActivated(agreementId, region, _endsAt(agreement));
    }

    /// @inheritdoc IConferenceEscrow
    function decline(uint256 agreementId) external onlyRole(OPERATOR_ROLE) nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        _cancel(agreementId, agreement, CancelReason.DeclinedByOperator);
    }

    /// @inheritdoc IConferenceEscrow
    function settle(uint256 agreementId, uint16 availabilityBps, bytes32 evidence, bytes calldata report)
        external
        nonReentrant
    {
        Agreement storage agreement = _agreement(agreementId);
        _requireMeasurement(agreementId, agreement, availabilityBps, evidence, report);
        _settle(agreementId, agreement, availabilityBps, evidence);
    }

    /// @inheritdoc IConferenceEscrow
    function stopAndSettle(
        uint256 agreementId,
        uint16 availabilityBps,
        bytes32 evidence,
        bytes calldata report,
        uint40 stoppedAt,
        uint40 deadline,
        bytes calldata signature
    ) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _endAtSignedTime(agreementId, agreement, stoppedAt, deadline, signature);
        _requireMeasurement(agreementId, agreement, availabilityBps, evidence, report);
        _settle(agreementId, agreement, availabilityBps, evidence);
    }

    // ---------------------------------------------------------------------------------------------
    // Anyone
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function end(uint256 agreementId) external {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 endsAt = _endsAt(agreement);
        if (block.timestamp < endsAt) revert Errors.Escrow_NotExpired(agreementId, endsAt);
        _end(agreementId, agreement, endsAt);
    }

    /// @inheritdoc IConferenceEscrow
    function stopBySignature(uint256 agreementId, uint40 stoppedAt, uint40 deadline, bytes calldata signature)
        external
    {
        _endAtSignedTime(agreementId, _agreement(agreementId), stoppedAt, deadline, signature);
    }

    /// @inheritdoc IConferenceEscrow
    function reclaim(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        uint256 deadline = uint256(agreement.startedAt) + ACTIVATION_WINDOW;
        if (block.timestamp <= deadline) revert Errors.Escrow_ActivationWindowOpen(agreementId, deadline);
        _cancel(agreementId, agreement, CancelReason.ActivationTimedOut);
    }

    /// @inheritdoc IConferenceEscrow
    function settleOverdue(uint256 agreementId) external nonReentrant {
        Agreement storage agreement = _agreement(agreementId);
        (, uint256 to) = _measuredPeriod(agreementId, agreement);
        uint256 deadline = to + SETTLEMENT_WINDOW;
        if (block.timestamp <= deadline) revert Errors.Escrow_SettlementWindowOpen(agreementId, deadline);
        // No report from the terms' monitor is no evidence of availability; without a monitor, the operator
        // that alone reports let its window pass.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint16 availabilityBps = _terms[agreement.termsId].monitored ? 0 : uint16(Pricing.BPS);
        _settle(agreementId, agreement, availabilityBps, bytes32(0));
    }

    /// @inheritdoc IConferenceEscrow
    function withdraw(uint8 tokenId) external nonReentrant {
        uint256 amount = _credits[msg.sender][tokenId];
        if (amount == 0) revert Errors.Escrow_NothingToWithdraw(msg.sender, tokenId);
        _credits[msg.sender][tokenId] = 0;
        emit Withdrawn(msg.sender, tokenId, amount);
        _send(tokenId, msg.sender, amount);
    }

    /// @inheritdoc IConferenceEscrow
    function withdrawEarnings(uint32 providerId, uint8 tokenId) external nonReentrant {
        uint256 amount = _earnings[providerId][tokenId];
        if (amount == 0) revert Errors.Escrow_NoEarnings(providerId, tokenId);
        IProviderRegistry.Provider memory provider = REGISTRY.providerOf(providerId);
        address payout = provider.payout;
        // Only the provider decides when: a provider moving its payout away from a lost address must not be
        // front-run into paying that address.
        if (msg.sender != provider.account && msg.sender != payout) {
            revert Errors.Escrow_NotProvider(providerId, msg.sender);
        }
        _earnings[providerId][tokenId] = 0;
        emit EarningsWithdrawn(providerId, tokenId, payout, amount);
        _send(tokenId, payout, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Offer book
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function publishTerms(Terms calldata terms, uint32 replacesTermsId) external returns (uint32 termsId) {
        if (msg.sender != address(BOOK)) revert Errors.Escrow_NotOfferBook(msg.sender);
        termsId = ++termsCount;
        Terms storage stored = _terms[termsId];
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
        emit TermsPublished(termsId, terms.offerId, terms.model, terms.price);
        if (replacesTermsId != 0) _closeTerms(replacesTermsId);
    }

    /// @inheritdoc IConferenceEscrow
    function closeTerms(uint32 termsId) external {
        if (msg.sender != address(BOOK)) revert Errors.Escrow_NotOfferBook(msg.sender);
        _closeTerms(termsId);
    }

    // ---------------------------------------------------------------------------------------------
    // Admin
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function addToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) returns (uint8 tokenId) {
        if (token.code.length == 0 || _tokenCount == type(uint8).max) revert Errors.Escrow_InvalidToken(token);
        tokenId = ++_tokenCount;
        _tokens[tokenId] = token;
        emit TokenAdded(tokenId, token);
    }

    /// @inheritdoc IConferenceEscrow
    function setPaused(bool paused_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        paused = paused_;
        emit PausedSet(paused_);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function quote(uint32 termsId, uint32 allowedRegions, bool gdpr, uint256 quantity)
        external
        view
        returns (uint256 deposit, uint256 price, uint24 surchargeBps)
    {
        Terms storage terms = _terms[termsId];
        if (!terms.open) revert Errors.Escrow_TermsNotOpen(termsId);
        (surchargeBps,) = _constrain(termsId, terms, allowedRegions, gdpr);
        price = terms.price;
        IOfferBook.Model model = terms.model;
        uint256 duration = model == IOfferBook.Model.TimeLimited
            ? quantity * 60
            : model == IOfferBook.Model.FlexiblePeriod ? quantity : terms.maxDuration;
        // Pricing's bounds (no signing can ask for more than 2^40 seconds either).
        if (duration > type(uint40).max) revert Errors.Escrow_InvalidQuantity(quantity);
        uint256 minimumCharge =
            model == IOfferBook.Model.FlexiblePeriod ? Pricing.surcharged(terms.minimumCharge, surchargeBps) : 0;
        deposit = Pricing.deposit(model, price, surchargeBps, duration, minimumCharge);
    }

    /// @inheritdoc IConferenceEscrow
    function termsOf(uint32 termsId) external view returns (Terms memory terms) {
        terms = _terms[termsId];
        if (terms.offerId == 0) revert Errors.OfferBook_UnknownTerms(termsId);
    }

    /// @inheritdoc IConferenceEscrow
    function agreementOf(uint256 agreementId) external view returns (Agreement memory) {
        return _agreement(agreementId);
    }

    /// @inheritdoc IConferenceEscrow
    function minutesAccountOf(uint256 agreementId) external view returns (MinutesAccount memory) {
        return _minutesAccounts[agreementId];
    }

    /// @inheritdoc IConferenceEscrow
    function windowOf(uint256 agreementId) external view returns (Window memory) {
        return _windows[agreementId];
    }

    /// @inheritdoc IConferenceEscrow
    function depositOf(uint256 agreementId) external view returns (uint256) {
        return _deposit(agreementId, _agreement(agreementId));
    }

    /// @inheritdoc IConferenceEscrow
    function stopDigest(uint256 agreementId, uint32 session, uint40 stoppedAt, uint40 deadline)
        external
        view
        returns (bytes32)
    {
        return _stopDigest(agreementId, session, stoppedAt, deadline);
    }

    /// @inheritdoc IConferenceEscrow
    function reportDigest(
        uint256 agreementId,
        uint32 session,
        uint40 startedAt,
        uint40 endedAt,
        uint16 availabilityBps,
        bytes32 evidence
    ) external view returns (bytes32) {
        return _reportDigest(agreementId, session, startedAt, endedAt, availabilityBps, evidence);
    }

    /// @inheritdoc IConferenceEscrow
    function earningsOf(uint32 providerId, uint8 tokenId) external view returns (uint256) {
        return _earnings[providerId][tokenId];
    }

    /// @inheritdoc IConferenceEscrow
    function creditOf(address account, uint8 tokenId) external view returns (uint256) {
        return _credits[account][tokenId];
    }

    /// @inheritdoc IConferenceEscrow
    function tokenOf(uint8 tokenId) external view returns (address) {
        return _tokens[tokenId];
    }

    /// @inheritdoc IConferenceEscrow
    function agreementCount() external view returns (uint256) {
        return _agreementCount;
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: every status change of an agreement happens below or in the functions above.
    // ---------------------------------------------------------------------------------------------

    function _closeTerms(uint32 termsId) private {
        _terms[termsId].open = false;
        emit TermsClosed(termsId);
    }

    function _open(
        uint32 termsId,
        Terms storage terms,
        uint32 regions,
        bool gdpr,
        uint24 surchargeBps,
        uint256 duration,
        Status status
    ) private returns (uint256 agreementId) {
        agreementId = ++_agreementCount;
        _agreements[agreementId] = Agreement({
            customer: msg.sender,
            termsId: termsId,
            allowedRegions: regions,
            model: terms.model,
            tokenId: terms.tokenId,
            gdpr: gdpr,
            status: status,
            region: 0,
            price: terms.price,
            surchargeBps: surchargeBps,
            duration: SafeCast.toUint40(duration),
            startedAt: status == Status.Requested ? _now() : 0,
            endedAt: 0
        });
    }

    function _end(uint256 agreementId, Agreement storage agreement, uint256 endedAt) private {
        agreement.status = Status.Ended;
        // forge-lint: disable-next-line(unsafe-typecast)
        agreement.endedAt = uint40(endedAt);
        emit AgreementEnded(agreementId, endedAt, msg.sender);
    }

    /// @dev Pays for one conference (or a FlexiblePeriod window that passed unused) and splits the charge.
    function _settle(uint256 agreementId, Agreement storage agreement, uint16 availabilityBps, bytes32 evidence)
        private
    {
        IOfferBook.Model model = agreement.model;
        uint256 used = agreement.status == Status.Ended ? agreement.endedAt - agreement.startedAt : 0;
        uint256 minimumCharge = model == IOfferBook.Model.FlexiblePeriod ? _windows[agreementId].minimumCharge : 0;
        uint256 charge =
            Pricing.charge(model, agreement.price, agreement.surchargeBps, used, minimumCharge, availabilityBps);
        uint256 refund = 0;
        if (model == IOfferBook.Model.TimeLimited) {
            // The session is paid; its seconds are consumed only if it was paid for. The account stays open, and
            // counts the session, so that a signed stop of this one cannot stop the next.
            agreement.status = Status.Idle;
            MinutesAccount storage account = _minutesAccounts[agreementId];
            ++account.sessions;
            if (availabilityBps >= Pricing.MIN_AVAILABILITY_BPS) {
                // forge-lint: disable-next-line(unsafe-typecast)
                agreement.duration -= uint40(used);
                account.charged += SafeCast.toUint88(charge);
            }
        } else {
            agreement.status = Status.Settled;
            refund = _deposit(agreementId, agreement) - charge;
        }
        _split(agreement.termsId, agreement.tokenId, charge);
        bool deferred = _push(agreement.tokenId, agreement.customer, refund);
        emit AgreementSettled(agreementId, availabilityBps, evidence, charge, refund, deferred);
    }

    /// @dev The customer calls its start off. Only this branch of {stop} may push a refund, so only it takes
    /// the reentrancy guard (ending a running conference moves no money, like {end}).
    function _callOff(uint256 agreementId, Agreement storage agreement) private nonReentrant {
        _cancel(agreementId, agreement, CancelReason.CancelledByCustomer);
    }

    /// @dev Calls off a start that never ran. A TimeLimited session consumes nothing: back to Idle. A
    /// FlexiblePeriod reservation (and its non-refundable minimum) stays, back to Idle, unless the service was
    /// at fault: the operator declined, or let pass the activation window of a start it was owed (see
    /// {_owedActivation}). Otherwise everything is refunded.
    function _cancel(uint256 agreementId, Agreement storage agreement, CancelReason reason) private {
        uint256 refund = 0;
        IOfferBook.Model model = agreement.model;
        if (
            model == IOfferBook.Model.TimeLimited
                || (model == IOfferBook.Model.FlexiblePeriod
                    && (reason == CancelReason.CancelledByCustomer
                        || (reason == CancelReason.ActivationTimedOut && !_owedActivation(agreementId, agreement))))
        ) {
            agreement.status = Status.Idle;
            agreement.startedAt = 0;
        } else {
            agreement.status = Status.Refunded;
            refund = _deposit(agreementId, agreement);
        }
        bool deferred = _push(agreement.tokenId, agreement.customer, refund);
        emit StartCancelled(agreementId, reason, refund, deferred);
    }

    /// @dev Credits each provider floor(charge × component / price) and the owner the rest: its margin
    /// and the rounding dust. Nothing is lost: the parts add up to `charge` exactly.
    function _split(uint32 termsId, uint8 tokenId, uint256 charge) private {
        if (charge == 0) return;
        Terms storage terms = _terms[termsId];
        uint256 price = terms.price;
        uint256 rest = charge;
        uint256 count = terms.shares.length;
        for (uint256 i; i < count; ++i) {
            IOfferBook.Share storage share = terms.shares[i];
            uint256 part = Pricing.shareOf(charge, share.component, price);
            _earnings[share.providerId][tokenId] += part;
            rest -= part;
        }
        if (rest != 0) _credit(terms.owner, tokenId, rest);
    }

    /// @dev The period whose availability a settlement pays for, and which settles: an Ended conference's
    /// [startedAt, endedAt); a FlexiblePeriod window that passed without a conference, [from, to): never started
    /// (Idle), or started too late to be owed an activation (Requested, see {_owedActivation}): such a start
    /// lapses with the window. The settlement may happen from the period's end. Reverts otherwise.
    function _measuredPeriod(uint256 agreementId, Agreement storage agreement)
        private
        view
        returns (uint256 from, uint256 to)
    {
        Status status = agreement.status;
        if (status == Status.Ended) return (agreement.startedAt, agreement.endedAt);
        if (
            agreement.model == IOfferBook.Model.FlexiblePeriod
                && (status == Status.Idle || (status == Status.Requested && !_owedActivation(agreementId, agreement)))
        ) {
            Window storage window = _windows[agreementId];
            to = window.to;
            if (block.timestamp >= to) return (window.from, to);
            revert Errors.Escrow_WindowOpen(agreementId, to);
        }
        revert Errors.Escrow_WrongStatus(agreementId, status);
    }

    /// @dev Whether the figure may settle: with a monitor, `report` is its signature over this conference,
    /// its measured period, the figure and the evidence (whoever submits it); without one, the operator
    /// reports and no report comes with it. Reverts otherwise, and if the agreement cannot settle now.
    function _requireMeasurement(
        uint256 agreementId,
        Agreement storage agreement,
        uint16 availabilityBps,
        bytes32 evidence,
        bytes calldata report
    ) private view {
        if (availabilityBps > Pricing.BPS) {
            revert Errors.Escrow_InvalidAvailability(availabilityBps);
        }
        (uint256 from, uint256 to) = _measuredPeriod(agreementId, agreement);
        Terms storage terms = _terms[agreement.termsId];
        if (!terms.monitored) {
            _checkRole(OPERATOR_ROLE);
            if (report.length != 0) revert Errors.Escrow_NoMonitor(agreementId);
            return;
        }
        address monitor = terms.monitor;
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes32 digest = _reportDigest(
            agreementId, _session(agreementId, agreement), uint40(from), uint40(to), availabilityBps, evidence
        );
        if (!SignatureChecker.isValidSignatureNowCalldata(monitor, digest, report)) {
            revert Errors.Escrow_InvalidReport(agreementId);
        }
    }

    /// @dev Whether a requested FlexiblePeriod start is owed an activation: it left the operator its whole
    /// ACTIVATION_WINDOW inside the reserved window. A later start is served if the operator can activate it
    /// before the window ends; if it cannot, the start lapses and the minimum stays charged.
    function _owedActivation(uint256 agreementId, Agreement storage agreement) private view returns (bool) {
        return uint256(agreement.startedAt) + ACTIVATION_WINDOW < _windows[agreementId].to;
    }

    /// @dev Ends a running conference at the time its customer signed (EIP-712 `Stop`): never later than now
    /// or its end time, never earlier than its start.
    function _endAtSignedTime(
        uint256 agreementId,
        Agreement storage agreement,
        uint40 stoppedAt,
        uint40 deadline,
        bytes calldata signature
    ) private {
        _requireStatus(agreementId, agreement, Status.Active);
        if (block.timestamp > deadline) revert Errors.Escrow_SignatureExpired(agreementId, deadline);
        uint32 session = _session(agreementId, agreement);
        if (!_signedByCustomer(agreement.customer, _stopDigest(agreementId, session, stoppedAt, deadline), signature)) {
            revert Errors.Escrow_InvalidSignature(agreementId);
        }
        uint256 latest = _endsAt(agreement);
        if (block.timestamp < latest) latest = block.timestamp;
        uint256 endedAt = stoppedAt > latest ? latest : stoppedAt;
        if (endedAt < agreement.startedAt) endedAt = agreement.startedAt;
        _end(agreementId, agreement, endedAt);
    }

    /// @dev Whether `signature` over `digest` is the customer's. Its own key first: an EOA, and an EOA that
    /// delegated its code (EIP-7702), whose delegate need not implement ERC-1271 (the key still controls the
    /// account). Then, for an account with code, ERC-1271 (a smart-contract wallet, or a delegate that does).
    function _signedByCustomer(address customer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        // slither-disable-next-line unused-return -- the third value only details an error, and any error means "not the key's"
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == customer) return true;
        return
            customer.code.length != 0
                && SignatureChecker.isValidERC1271SignatureNowCalldata(customer, digest, signature);
    }

    /// @dev Takes the deposit: ETH with the call, or exactly `amount` of the ERC-20 (a token that
    /// delivers less, such as one with a fee on transfer, is refused).
    // slither-disable-next-line msg-value-in-nonpayable -- reached only from the payable sign, buyMinutes and reserve (slither cannot build this contract's call graph: see SECURITY.md)
    function _collect(uint8 tokenId, uint256 amount) private {
        if (tokenId == 0) {
            if (msg.value != amount) revert Errors.Escrow_WrongDeposit(amount, msg.value);
            return;
        }
        if (msg.value != 0) revert Errors.Escrow_WrongDeposit(0, msg.value);
        IERC20 token = IERC20(_tokens[tokenId]);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert Errors.Escrow_UnsupportedToken(address(token), amount, received);
    }

    /// @dev Sends a refund without letting the recipient block the caller: ETH with bounded gas and no
    /// return data copied, ERC-20 with a transfer whose failure is caught. A failed push is credited for
    /// the recipient to withdraw. Returns true when credited.
    function _push(uint8 tokenId, address to, uint256 amount) private returns (bool deferred) {
        if (amount == 0) return false;
        bool ok;
        if (tokenId == 0) {
            assembly ("memory-safe") {
                ok := call(REFUND_GAS, to, amount, 0, 0, 0, 0)
            }
        } else {
            ok = IERC20(_tokens[tokenId]).trySafeTransfer(to, amount);
        }
        if (!ok) _credit(to, tokenId, amount);
        return !ok;
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

    function _credit(address account, uint8 tokenId, uint256 amount) private {
        _credits[account][tokenId] += amount;
        emit Credited(account, tokenId, amount);
    }

    /// @dev The constraint surcharge and the regions the agreement allows. Reverts if the constraints cannot
    /// be met by these terms.
    function _constrain(uint32 termsId, Terms storage terms, uint32 allowedRegions, bool gdpr)
        private
        view
        returns (uint24 surchargeBps, uint32 regions)
    {
        uint32 served = terms.regions;
        regions = allowedRegions == 0 ? served : allowedRegions & served;
        if (regions == 0) revert Errors.Escrow_NoRegionAllowed(termsId, allowedRegions);
        if (gdpr && !terms.gdpr) revert Errors.Escrow_GdprUnavailable(termsId);
        if (gdpr) surchargeBps += terms.gdprSurchargeBps;
        if (regions != served) surchargeBps += terms.regionSurchargeBps;
    }

    function _signable(uint32 termsId) private view returns (Terms storage terms) {
        if (paused) revert Errors.Escrow_Paused();
        terms = _terms[termsId];
        if (!terms.open) revert Errors.Escrow_TermsNotOpen(termsId);
    }

    function _deposit(uint256 agreementId, Agreement storage agreement) private view returns (uint256) {
        IOfferBook.Model model = agreement.model;
        if (model == IOfferBook.Model.TimeLimited) return _minutesAccounts[agreementId].deposit;
        if (model == IOfferBook.Model.FlexiblePeriod) {
            Window storage window = _windows[agreementId];
            return Pricing.deposit(
                model, agreement.price, agreement.surchargeBps, window.to - window.from, window.minimumCharge
            );
        }
        return Pricing.deposit(model, agreement.price, agreement.surchargeBps, agreement.duration, 0);
    }

    function _endsAt(Agreement storage agreement) private view returns (uint256) {
        return uint256(agreement.startedAt) + agreement.duration;
    }

    function _stopDigest(uint256 agreementId, uint32 session, uint40 stoppedAt, uint40 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(STOP_TYPEHASH, agreementId, session, stoppedAt, deadline)));
    }

    /// @dev The number of the agreement's current (or next) conference: 1 + the sessions settled before it,
    /// which only a TimeLimited agreement counts (read only for it: every other model has one conference).
    function _session(uint256 agreementId, Agreement storage agreement) private view returns (uint32) {
        if (agreement.model != IOfferBook.Model.TimeLimited) return 1;
        return _minutesAccounts[agreementId].sessions + 1;
    }

    function _reportDigest(
        uint256 agreementId,
        uint32 session,
        uint40 startedAt,
        uint40 endedAt,
        uint16 availabilityBps,
        bytes32 evidence
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(AVAILABILITY_TYPEHASH, agreementId, session, startedAt, endedAt, availabilityBps, evidence)
            )
        );
    }

    function _agreement(uint256 agreementId) private view returns (Agreement storage agreement) {
        agreement = _agreements[agreementId];
        if (agreement.status == Status.None) revert Errors.Escrow_UnknownAgreement(agreementId);
    }

    function _customersAgreement(uint256 agreementId) private view returns (Agreement storage agreement) {
        agreement = _agreement(agreementId);
        if (msg.sender != agreement.customer) revert Errors.Escrow_NotCustomer(agreementId, msg.sender);
    }

    function _requireStatus(uint256 agreementId, Agreement storage agreement, Status expected) private view {
        if (agreement.status != expected) revert Errors.Escrow_WrongStatus(agreementId, agreement.status);
    }

    /// @dev Block timestamps fit in 40 bits until the year 36812.
    function _now() private view returns (uint40) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint40(block.timestamp);
    }
}
