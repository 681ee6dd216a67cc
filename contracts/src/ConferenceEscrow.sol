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

import {EscrowAnnex} from "./EscrowAnnex.sol";
import {EscrowState} from "./EscrowState.sol";
import {OfferBook} from "./OfferBook.sol";
import {IConferenceEscrow} from "./interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "./interfaces/IOfferBook.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Errors} from "./libraries/Errors.sol";
import {Pricing} from "./libraries/Pricing.sol";

/// @title ConferenceEscrow
/// @notice See {IConferenceEscrow}. One long-lived contract holds every agreement as an entry: one storage
/// slot for a FixedPrice or DynamicPrice agreement without narrowed regions (a second one for narrowed regions,
/// a minutes account or a window, and for the end of a conference stopped by a call of its own), so an
/// agreement costs storage, not a deployment. Customers may also keep an account here and open conferences
/// from it by signed orders, which the operator opens, activates and settles in batches ({batch}). The code
/// beyond 24 KB runs from {EscrowAnnex}, in this contract's storage.
/// @dev Roles: DEFAULT_ADMIN_ROLE (pauses signing, adds tokens, manages roles), OFFER_ADMIN_ROLE (drafts
/// offers) and OPERATOR_ROLE (the backend's hot key: activates, declines, settles). None of them has a path
/// that sends escrow anywhere but to the agreement's customer, or earnings anywhere but to the providers'
/// payout addresses and the offer owner.
contract ConferenceEscrow is IConferenceEscrow, EscrowState {
    using SafeERC20 for IERC20;

    /// @notice The only source of terms: deployed here, so no key can publish terms past the providers.
    OfferBook public immutable BOOK;

    /// @notice Where providers are registered (and where their payout addresses are read).
    IProviderRegistry public immutable REGISTRY;

    /// @notice Seconds from a start request within which the operator must activate.
    uint40 public immutable ACTIVATION_WINDOW;

    /// @notice Seconds from a conference's end within which the operator must settle.
    uint40 public immutable SETTLEMENT_WINDOW;

    /// @dev Gas forwarded with a pushed ETH refund: enough for a smart-contract wallet's receive hook, too
    /// little for a recipient to grief the caller; a refund that fails is credited instead.
    uint256 private constant REFUND_GAS = 50_000;

    /// @notice The code of the escrow's customer accounts and payouts, run in this contract's storage.
    EscrowAnnex public immutable ANNEX;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and OFFER_ADMIN_ROLE.
    /// @param operator Receives OPERATOR_ROLE.
    /// @param activationWindow Seconds the operator has to activate a requested start.
    /// @param settlementWindow Seconds the operator has to settle an ended conference.
    /// @param votingPeriod Seconds a proposal's vote stays open.
    /// @param annex The code of the functions that run in {EscrowAnnex} (deployed once; it holds no state).
    constructor(
        address admin,
        address operator,
        IProviderRegistry registry,
        uint40 activationWindow,
        uint40 settlementWindow,
        uint40 votingPeriod,
        EscrowAnnex annex
    ) {
        if (
            admin == address(0) || operator == address(0) || address(registry) == address(0)
                || address(annex).code.length == 0 || activationWindow == 0 || settlementWindow == 0
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
        ANNEX = annex;
    }

    // ---------------------------------------------------------------------------------------------
    // Customer accounts, payouts, terms publishing and admin: run in ANNEX's code (see {EscrowAnnex})
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function depositToAccount(uint8 tokenId, uint256 amount) external payable {
        (tokenId, amount); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function requestWithdrawal(uint8 tokenId, uint256 amount) external {
        (tokenId, amount); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function completeWithdrawal(uint8 tokenId) external {
        // slither-disable-next-line redundant-statements -- named for the ABI; the annex reads it from the calldata
        tokenId;
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function cancelOrders(uint256 word, uint256 mask) external {
        (word, mask); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function openOrder(Order calldata order, address customer, bytes calldata signature)
        external
        returns (uint256 agreementId)
    {
        (order, customer, signature, agreementId); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function withdraw(uint8 tokenId) external {
        // slither-disable-next-line redundant-statements -- named for the ABI; the annex reads it from the calldata
        tokenId;
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function withdrawEarnings(uint32 providerId, uint8 tokenId) external {
        (providerId, tokenId); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function publishTerms(Terms calldata terms, uint32 replacesTermsId) external returns (uint32 termsId) {
        (terms, replacesTermsId, termsId); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function closeTerms(uint32 termsId) external {
        // slither-disable-next-line redundant-statements -- named for the ABI; the annex reads it from the calldata
        termsId;
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function addToken(address token) external returns (uint8 tokenId) {
        (token, tokenId); // named for the ABI; the annex reads them from the calldata
        _inAnnex();
    }

    /// @inheritdoc IConferenceEscrow
    function setPaused(bool paused_) external {
        // slither-disable-next-line redundant-statements -- named for the ABI; the annex reads it from the calldata
        paused_;
        _inAnnex();
    }

    // ---------------------------------------------------------------------------------------------
    // Customer: direct agreements
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
        (uint24 surchargeBps, uint32 regions, uint8 flags) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 amount = Pricing.deposit(model, terms.price, surchargeBps, terms.maxDuration, 0);
        agreementId = _open(msg.sender, termsId, regions, flags, 0, Status.Requested);
        _announceSigned(agreementId, msg.sender, amount, terms, surchargeBps, regions, flags, terms.maxDuration);
        _collect(terms.tokenId, amount);
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
        (uint24 surchargeBps, uint32 regions, uint8 flags) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 amount = Pricing.deposit(IOfferBook.Model.TimeLimited, terms.price, surchargeBps, duration, 0);
        agreementId = _open(msg.sender, termsId, regions, flags | OWN_DURATION, duration, Status.Idle);
        _minutesAccounts[agreementId].deposit = SafeCast.toUint88(amount);
        _announceSigned(agreementId, msg.sender, amount, terms, surchargeBps, regions, flags, duration);
        _collect(terms.tokenId, amount);
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
        (uint24 surchargeBps, uint32 regions, uint8 flags) = _constrain(termsId, terms, allowedRegions, gdpr);
        uint256 amount;
        // Scoped: the stack has no room for it at the announcement below.
        {
            uint256 minimumCharge = Pricing.surcharged(terms.minimumCharge, surchargeBps);
            amount =
                Pricing.deposit(IOfferBook.Model.FlexiblePeriod, terms.price, surchargeBps, to - from, minimumCharge);
            agreementId = _open(msg.sender, termsId, regions, flags | OWN_DURATION, to - from, Status.Idle);
            _windows[agreementId] = Window({from: from, to: to, minimumCharge: SafeCast.toUint88(minimumCharge)});
        }
        _announceSigned(agreementId, msg.sender, amount, terms, surchargeBps, regions, flags, to - from);
        emit WindowReserved(agreementId, from, to);
        _collect(terms.tokenId, amount);
    }

    /// @inheritdoc IConferenceEscrow
    function start(uint256 agreementId) external {
        Record storage agreement = _customersAgreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Idle);
        if (_modelOf(agreement) == IOfferBook.Model.TimeLimited) {
            if (_details[agreementId].duration == 0) revert Errors.Escrow_NoMinutesLeft(agreementId);
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
        Record storage agreement = _customersAgreement(agreementId);
        if (agreement.status == Status.Requested) return _callOff(agreementId, agreement);
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 endsAt = _endsAt(agreementId, agreement);
        _end(agreementId, agreement, block.timestamp < endsAt ? block.timestamp : endsAt);
    }

    /// @inheritdoc IConferenceEscrow
    function close(uint256 agreementId) external nonReentrant {
        Record storage agreement = _customersAgreement(agreementId);
        IOfferBook.Model model = _modelOf(agreement);
        if (model != IOfferBook.Model.TimeLimited) revert Errors.Escrow_WrongModel(agreement.termsId, model);
        _requireStatus(agreementId, agreement, Status.Idle);
        MinutesAccount storage account = _minutesAccounts[agreementId];
        uint256 refund = uint256(account.deposit) - account.charged;
        agreement.status = Status.Settled;
        bool deferred = _push(_terms[agreement.termsId].tokenId, agreement.customer, refund);
        emit AgreementClosed(agreementId, refund, deferred);
    }

    // ---------------------------------------------------------------------------------------------
    // Operator
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function activate(uint256 agreementId, uint8 region) external onlyRole(OPERATOR_ROLE) {
        Record storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        uint256 deadline = uint256(agreement.startedAt) + ACTIVATION_WINDOW;
        if (block.timestamp > deadline) revert Errors.Escrow_ActivationWindowClosed(agreementId, deadline);
        uint32 allowed = _allowedRegions(agreementId, agreement);
        if (region >= 32 || allowed & (uint32(1) << region) == 0) {
            revert Errors.Escrow_RegionNotAllowed(agreementId, region, allowed);
        }
        if (_hasWindow(agreement)) {
            // The conference may run until the window closes, however late it started.
            uint40 to = _windows[agreementId].to;
            if (block.timestamp >= to) revert Errors.Escrow_OutsideWindow(agreementId, _windows[agreementId].from, to);
            _details[agreementId].duration = to - _now();
        }
        agreement.status = Status.Active;
        agreement.region = region;
        agreement.startedAt = _now();
        emit AgreementActivated(agreementId, region, _endsAt(agreementId, agreement));
    }

    /// @inheritdoc IConferenceEscrow
    function decline(uint256 agreementId) external onlyRole(OPERATOR_ROLE) nonReentrant {
        Record storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        _cancel(agreementId, agreement, CancelReason.DeclinedByOperator);
    }

    /// @inheritdoc IConferenceEscrow
    function settle(uint256 agreementId, uint16 availabilityBps, bytes32 evidence, bytes calldata report)
        external
        nonReentrant
    {
        Record storage agreement = _agreement(agreementId);
        (uint256 from, uint256 to) = _measuredPeriod(agreementId, agreement);
        _requireMeasurement(agreementId, agreement, from, to, availabilityBps, evidence, report);
        _settle(agreementId, agreement, agreement.status == Status.Ended ? to - from : 0, availabilityBps, evidence);
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
        Record storage agreement = _agreement(agreementId);
        uint256 endedAt = _signedEnd(agreementId, agreement, stoppedAt, deadline, signature);
        emit AgreementEnded(agreementId, endedAt, msg.sender);
        uint256 startedAt = agreement.startedAt;
        _requireMeasurement(agreementId, agreement, startedAt, endedAt, availabilityBps, evidence, report);
        _settle(agreementId, agreement, endedAt - startedAt, availabilityBps, evidence);
    }

    // ---------------------------------------------------------------------------------------------
    // Anyone
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IConferenceEscrow
    function batch(bytes[] calldata calls) external returns (bool[] memory succeeded) {
        succeeded = new bool[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            // The caller's own call, run in this contract's context: msg.sender and its roles are the caller's,
            // and msg.value is 0 (this function is not payable).
            // slither-disable-next-line calls-loop,reentrancy-events -- this contract's own functions, each one the caller could send alone; the event reports the call's own failure
            (bool ok, bytes memory reason) = address(this).delegatecall(calls[i]);
            // Every refusal of the escrow's functions names its error. A revert without one is a call that ran
            // out of gas (or names no function here): not a bad item but a short gas limit (or a malformed
            // batch), so the whole batch reverts: no item is skipped for it, and gas estimation finds the
            // limit every item needs.
            if (!ok && reason.length == 0) revert Errors.Escrow_BatchCallWithoutReason(i);
            succeeded[i] = ok;
            if (!ok) emit BatchCallFailed(i, reason);
        }
    }

    /// @inheritdoc IConferenceEscrow
    function end(uint256 agreementId) external {
        Record storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Active);
        uint256 endsAt = _endsAt(agreementId, agreement);
        if (block.timestamp < endsAt) revert Errors.Escrow_NotExpired(agreementId, endsAt);
        _end(agreementId, agreement, endsAt);
    }

    /// @inheritdoc IConferenceEscrow
    function stopBySignature(uint256 agreementId, uint40 stoppedAt, uint40 deadline, bytes calldata signature)
        external
    {
        Record storage agreement = _agreement(agreementId);
        _end(agreementId, agreement, _signedEnd(agreementId, agreement, stoppedAt, deadline, signature));
    }

    /// @inheritdoc IConferenceEscrow
    function reclaim(uint256 agreementId) external nonReentrant {
        Record storage agreement = _agreement(agreementId);
        _requireStatus(agreementId, agreement, Status.Requested);
        uint256 deadline = uint256(agreement.startedAt) + ACTIVATION_WINDOW;
        if (block.timestamp <= deadline) revert Errors.Escrow_ActivationWindowOpen(agreementId, deadline);
        _cancel(agreementId, agreement, CancelReason.ActivationTimedOut);
    }

    /// @inheritdoc IConferenceEscrow
    function settleOverdue(uint256 agreementId) external nonReentrant {
        Record storage agreement = _agreement(agreementId);
        (uint256 from, uint256 to) = _measuredPeriod(agreementId, agreement);
        uint256 deadline = to + SETTLEMENT_WINDOW;
        if (block.timestamp <= deadline) revert Errors.Escrow_SettlementWindowOpen(agreementId, deadline);
        // No report from the terms' monitor is no evidence of availability; without a monitor, the operator
        // that alone reports let its window pass.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint16 availabilityBps = _terms[agreement.termsId].monitored ? 0 : uint16(Pricing.BPS);
        _settle(agreementId, agreement, agreement.status == Status.Ended ? to - from : 0, availabilityBps, bytes32(0));
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
        (surchargeBps,,) = _constrain(termsId, terms, allowedRegions, gdpr);
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
        Record storage record = _agreement(agreementId);
        Terms storage terms = _terms[record.termsId];
        return Agreement({
            customer: record.customer,
            termsId: record.termsId,
            allowedRegions: _allowedRegions(agreementId, record),
            model: terms.model,
            tokenId: terms.tokenId,
            gdpr: record.flags & GDPR != 0,
            status: record.status,
            region: record.region,
            price: terms.price,
            surchargeBps: _surchargeOf(record, terms),
            duration: SafeCast.toUint40(_duration(agreementId, record)),
            startedAt: record.startedAt,
            endedAt: _details[agreementId].endedAt
        });
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
    function accountOf(address customer, uint8 tokenId) external view returns (Account memory) {
        return _accounts[customer][tokenId];
    }

    /// @inheritdoc IConferenceEscrow
    function orderNonceUsed(address customer, uint256 nonce) external view returns (bool) {
        return _orderNonces[customer][nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @inheritdoc IConferenceEscrow
    function orderDigest(Order calldata order) external view returns (bytes32) {
        return _orderDigest(order);
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

    /// @notice Whether signing is paused.
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @inheritdoc IConferenceEscrow
    function termsCount() external view returns (uint32) {
        return _termsCount;
    }

    /// @inheritdoc IConferenceEscrow
    function agreementCount() external view returns (uint256) {
        return _agreementCount;
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: every status change of an agreement happens below or in the functions above.
    // ---------------------------------------------------------------------------------------------

    /// @dev Runs the current call in ANNEX's code, in this contract's storage, balance and context (sender,
    /// value), and returns or reverts with what it returns or reverts with: OpenZeppelin's `Proxy._delegate`,
    /// for the functions listed above only.
    // slither-disable-next-line incorrect-return -- it returns the annex's answer as the calling function's own, by design
    function _inAnnex() private {
        address annex = address(ANNEX);
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), annex, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }

    function _end(uint256 agreementId, Record storage agreement, uint256 endedAt) private {
        agreement.status = Status.Ended;
        // forge-lint: disable-next-line(unsafe-typecast)
        _details[agreementId].endedAt = uint40(endedAt);
        emit AgreementEnded(agreementId, endedAt, msg.sender);
    }

    /// @dev Pays for one conference that ran `used` seconds (0 for a FlexiblePeriod window that passed
    /// unused) and splits the charge.
    function _settle(
        uint256 agreementId,
        Record storage agreement,
        uint256 used,
        uint16 availabilityBps,
        bytes32 evidence
    ) private {
        Terms storage terms = _terms[agreement.termsId];
        IOfferBook.Model model = terms.model;
        uint24 surchargeBps = _surchargeOf(agreement, terms);
        uint256 minimumCharge =
            model == IOfferBook.Model.FlexiblePeriod ? _minimumCharge(agreementId, agreement, terms, surchargeBps) : 0;
        uint256 charge = Pricing.charge(model, terms.price, surchargeBps, used, minimumCharge, availabilityBps);
        uint256 released = 0;
        uint256 refund = 0;
        if (model == IOfferBook.Model.TimeLimited && agreement.flags & FROM_ACCOUNT == 0) {
            // The session is paid; its seconds are consumed only if it was paid for. The account stays open, and
            // counts the session, so that a signed stop of this one cannot stop the next.
            agreement.status = Status.Idle;
            MinutesAccount storage account = _minutesAccounts[agreementId];
            ++account.sessions;
            if (availabilityBps >= Pricing.MIN_AVAILABILITY_BPS) {
                // forge-lint: disable-next-line(unsafe-typecast)
                _details[agreementId].duration -= uint40(used);
                account.charged += SafeCast.toUint88(charge);
            }
        } else {
            agreement.status = Status.Settled;
            released = _deposit(agreementId, agreement);
            refund = released - charge;
        }
        uint8 tokenId = terms.tokenId;
        _split(terms, tokenId, charge);
        bool deferred = _payBack(agreement, tokenId, released, refund);
        emit AgreementSettled(agreementId, availabilityBps, evidence, charge, refund, deferred);
    }

    /// @dev The customer calls its start off. Only this branch of {stop} may push a refund, so only it takes
    /// the reentrancy guard (ending a running conference moves no money, like {end}).
    function _callOff(uint256 agreementId, Record storage agreement) private nonReentrant {
        _cancel(agreementId, agreement, CancelReason.CancelledByCustomer);
    }

    /// @dev Calls off a start that never ran. A TimeLimited session consumes nothing: back to Idle. A
    /// FlexiblePeriod reservation (and its non-refundable minimum) stays, back to Idle, unless the service was
    /// at fault: the operator declined, or let pass the activation window of a start it was owed (see
    /// {_owedActivation}). Otherwise (and always for an agreement opened from an account, which is one
    /// conference) everything is refunded.
    function _cancel(uint256 agreementId, Record storage agreement, CancelReason reason) private {
        Terms storage terms = _terms[agreement.termsId];
        IOfferBook.Model model = terms.model;
        uint256 refund = 0;
        if (
            agreement.flags & FROM_ACCOUNT == 0
                && (model == IOfferBook.Model.TimeLimited
                    || (model == IOfferBook.Model.FlexiblePeriod
                        && (reason == CancelReason.CancelledByCustomer
                            || (reason == CancelReason.ActivationTimedOut
                                && !_owedActivation(agreementId, agreement)))))
        ) {
            agreement.status = Status.Idle;
            agreement.startedAt = 0;
        } else {
            agreement.status = Status.Refunded;
            refund = _deposit(agreementId, agreement);
        }
        bool deferred = _payBack(agreement, terms.tokenId, refund, refund);
        emit StartCancelled(agreementId, reason, refund, deferred);
    }

    /// @dev Returns money to the customer: for an agreement opened from an account, unlocks its `released`
    /// deposit and frees `refund` of it in the account (returns true: credited, not sent); otherwise pushes
    /// `refund` (see {_push}).
    function _payBack(Record storage agreement, uint8 tokenId, uint256 released, uint256 refund)
        private
        returns (bool deferred)
    {
        if (agreement.flags & FROM_ACCOUNT == 0) return _push(tokenId, agreement.customer, refund);
        if (released == 0) return false;
        Account storage account = _accounts[agreement.customer][tokenId];
        // The account holds at most 2^128 - 1 in all, and `refund` ≤ `released` ≤ what it locked.
        // forge-lint: disable-next-line(unsafe-typecast)
        account.locked -= uint128(released);
        // forge-lint: disable-next-line(unsafe-typecast)
        account.free += uint128(refund);
        return true;
    }

    /// @dev Credits each provider floor(charge × component / price) and the owner the rest: its margin
    /// and the rounding dust. Nothing is lost: the parts add up to `charge` exactly.
    function _split(Terms storage terms, uint8 tokenId, uint256 charge) private {
        if (charge == 0) return;
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
    function _measuredPeriod(uint256 agreementId, Record storage agreement)
        private
        view
        returns (uint256 from, uint256 to)
    {
        Status status = agreement.status;
        if (status == Status.Ended) return (agreement.startedAt, _details[agreementId].endedAt);
        if (
            _hasWindow(agreement)
                && (status == Status.Idle || (status == Status.Requested && !_owedActivation(agreementId, agreement)))
        ) {
            Window storage window = _windows[agreementId];
            to = window.to;
            if (block.timestamp >= to) return (window.from, to);
            revert Errors.Escrow_WindowOpen(agreementId, to);
        }
        revert Errors.Escrow_WrongStatus(agreementId, status);
    }

    /// @dev Whether the figure may settle the period [from, to): with a monitor, `report` is its signature over
    /// this conference, the period, the figure and the evidence (whoever submits it); without one, the
    /// operator reports and no report comes with it. Reverts otherwise.
    function _requireMeasurement(
        uint256 agreementId,
        Record storage agreement,
        uint256 from,
        uint256 to,
        uint16 availabilityBps,
        bytes32 evidence,
        bytes calldata report
    ) private view {
        if (availabilityBps > Pricing.BPS) {
            revert Errors.Escrow_InvalidAvailability(availabilityBps);
        }
        Terms storage terms = _terms[agreement.termsId];
        if (!terms.monitored) {
            _checkRole(OPERATOR_ROLE);
            if (report.length != 0) revert Errors.Escrow_NoMonitor(agreementId);
            return;
        }
        address monitor = terms.monitor;
        // The period's ends are block times or times stored in 40 bits.
        // forge-lint: disable-next-item(unsafe-typecast)
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
    function _owedActivation(uint256 agreementId, Record storage agreement) private view returns (bool) {
        return uint256(agreement.startedAt) + ACTIVATION_WINDOW < _windows[agreementId].to;
    }

    /// @dev When a running conference ended by its customer's signed stop (EIP-712 `Stop`): the signed time,
    /// never later than now or its end time, never earlier than its start. Reverts unless it is running, the
    /// deadline has not passed and the signature is the customer's over this conference.
    function _signedEnd(
        uint256 agreementId,
        Record storage agreement,
        uint40 stoppedAt,
        uint40 deadline,
        bytes calldata signature
    ) private view returns (uint256 endedAt) {
        _requireStatus(agreementId, agreement, Status.Active);
        if (block.timestamp > deadline) revert Errors.Escrow_SignatureExpired(agreementId, deadline);
        uint32 session = _session(agreementId, agreement);
        if (!_signedByCustomer(agreement.customer, _stopDigest(agreementId, session, stoppedAt, deadline), signature)) {
            revert Errors.Escrow_InvalidSignature(agreementId);
        }
        uint256 latest = _endsAt(agreementId, agreement);
        if (block.timestamp < latest) latest = block.timestamp;
        endedAt = stoppedAt > latest ? latest : stoppedAt;
        if (endedAt < agreement.startedAt) endedAt = agreement.startedAt;
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

    function _surchargeOf(Record storage agreement, Terms storage terms) private view returns (uint24) {
        return _surcharge(terms, agreement.flags);
    }

    /// @dev What the agreement's customer paid in (or locked, from an account).
    function _deposit(uint256 agreementId, Record storage agreement) private view returns (uint256) {
        Terms storage terms = _terms[agreement.termsId];
        uint24 surchargeBps = _surchargeOf(agreement, terms);
        if (agreement.flags & OWN_DURATION == 0) return _fullDeposit(terms, surchargeBps);
        if (terms.model == IOfferBook.Model.TimeLimited) return _minutesAccounts[agreementId].deposit;
        Window storage window = _windows[agreementId];
        return Pricing.deposit(
            IOfferBook.Model.FlexiblePeriod, terms.price, surchargeBps, window.to - window.from, window.minimumCharge
        );
    }

    /// @dev A FlexiblePeriod agreement's minimum charge, after the surcharge: its window's, or the terms' for
    /// one opened from an account.
    function _minimumCharge(uint256 agreementId, Record storage agreement, Terms storage terms, uint24 surchargeBps)
        private
        view
        returns (uint256)
    {
        if (agreement.flags & OWN_DURATION != 0) return _windows[agreementId].minimumCharge;
        return Pricing.surcharged(terms.minimumCharge, surchargeBps);
    }

    function _modelOf(Record storage agreement) private view returns (IOfferBook.Model) {
        return _terms[agreement.termsId].model;
    }

    /// @dev Whether the agreement is a FlexiblePeriod reservation with its window (not one opened from an
    /// account, which runs from its activation for at most the terms' maxDuration).
    function _hasWindow(Record storage agreement) private view returns (bool) {
        return agreement.flags & OWN_DURATION != 0 && _modelOf(agreement) == IOfferBook.Model.FlexiblePeriod;
    }

    function _allowedRegions(uint256 agreementId, Record storage agreement) private view returns (uint32) {
        if (agreement.flags & NARROWED != 0) return _details[agreementId].allowedRegions;
        return _terms[agreement.termsId].regions;
    }

    /// @dev The longest the next conference may run (see {IConferenceEscrow-Agreement}).
    function _duration(uint256 agreementId, Record storage agreement) private view returns (uint256) {
        if (agreement.flags & OWN_DURATION != 0) return _details[agreementId].duration;
        return _terms[agreement.termsId].maxDuration;
    }

    function _endsAt(uint256 agreementId, Record storage agreement) private view returns (uint256) {
        return uint256(agreement.startedAt) + _duration(agreementId, agreement);
    }

    function _stopDigest(uint256 agreementId, uint32 session, uint40 stoppedAt, uint40 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(STOP_TYPEHASH, agreementId, session, stoppedAt, deadline)));
    }

    /// @dev The number of the agreement's current (or next) conference: 1 + the sessions settled before it,
    /// which only a TimeLimited agreement with bought minutes counts (every other agreement has one conference).
    function _session(uint256 agreementId, Record storage agreement) private view returns (uint32) {
        if (agreement.flags & OWN_DURATION == 0) return 1;
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

    function _agreement(uint256 agreementId) private view returns (Record storage agreement) {
        agreement = _agreements[agreementId];
        if (agreement.status == Status.None) revert Errors.Escrow_UnknownAgreement(agreementId);
    }

    function _customersAgreement(uint256 agreementId) private view returns (Record storage agreement) {
        agreement = _agreement(agreementId);
        if (msg.sender != agreement.customer) revert Errors.Escrow_NotCustomer(agreementId, msg.sender);
    }

    function _requireStatus(uint256 agreementId, Record storage agreement, Status expected) private view {
        if (agreement.status != expected) revert Errors.Escrow_WrongStatus(agreementId, agreement.status);
    }
}
