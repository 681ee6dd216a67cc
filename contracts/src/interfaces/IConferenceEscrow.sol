// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IOfferBook} from "./IOfferBook.sol";

/// @title IConferenceEscrow
/// @notice Escrow for conferences under every pricing model: the customer pays into the contract when
/// signing; the operator (the backend's key) starts the conference and settles it; providers are paid for
/// what was used, split by their price components; the customer gets the rest back, and everything back
/// if the measured availability fell below 75% or the service never started.
/// @dev Lifecycle of an agreement (one `status` field; transitions only through the functions below).
///
///     FixedPrice, DynamicPrice:   sign ──► Requested
///     TimeLimited, FlexiblePeriod: sign ──► Idle ──start──► Requested
///
///     Requested ──activate(region)──► Active ──stop / end / stopBySignature / stopAndSettle──► Ended
///        │                                   Ended ──settle / settleOverdue──► Settled (FixedPrice, DynamicPrice,
///        │                                                                              FlexiblePeriod)
///        │                                                                     Idle    (TimeLimited: the next session)
///        └── stop (customer) / decline (operator) / reclaim (anyone, after ACTIVATION_WINDOW) ──►
///               Refunded (FixedPrice, DynamicPrice: everything back; FlexiblePeriod when the service was at
///                         fault: declined, or a start it was owed timed out: everything back)
///               Idle     (TimeLimited: nothing consumed; FlexiblePeriod stopped by the customer, or a start
///                         too late to be owed an activation timed out: the reservation stays, and so does
///                         its non-refundable minimum)
///
///     Idle ──close (customer)──► Settled   (TimeLimited: unused minutes back)
///     Idle ──settle / settleOverdue after the window──► Settled   (FlexiblePeriod never started: the minimum)
///     Requested ──settle / settleOverdue after the window──► Settled   (FlexiblePeriod start too late to be
///                                                                    owed an activation: it lapsed; the minimum)
///
///     From a customer's account, every model:   openOrder (operator) ──► Requested ──activate──► Active
///        ──stop / end / stopBySignature──► Ended ──settle / settleOverdue──► Settled   (stopAndSettle: Active ──► Settled)
///        Requested ──stop (customer) / decline / reclaim──► Refunded   (the whole lock back to the account's free balance)
///
/// A FlexiblePeriod start is owed an activation when it leaves the operator its whole ACTIVATION_WINDOW
/// before the window ends (startedAt + ACTIVATION_WINDOW < to). A later start is served if the operator can
/// activate it before `to`; if not, it lapses with the window, and the minimum is charged as if the window
/// had passed unused: the service was ready, the customer asked too late.
///
/// Charges (P the terms' price per unit, s the constraint surcharge in basis points, u = endedAt - startedAt
/// seconds, m the minimum charge after the surcharge), each rounded down once:
///     FixedPrice P·(1+s) · DynamicPrice P·u·(1+s) · TimeLimited P·u·(1+s)/60 per session ·
///     FlexiblePeriod m + P·u·(1+s)
/// and 0 when availability < 75%.
///
/// Availability: the share of the probes due over the measured period that succeeded, in basis points. The
/// period is the conference's [startedAt, endedAt), or a FlexiblePeriod window's [from, to) when it passed
/// without a conference. It is cut into slots of the probe interval (at least one); a slot counts when it
/// holds a successful probe, and a slot without any probe counts as failed: no evidence is no availability.
/// When the terms name a monitor (a provider with the Monitoring role), the figure is the monitor's: only its
/// EIP-712 `Availability` report settles, whoever submits it, and an agreement nobody settled with a report
/// within SETTLEMENT_WINDOW settles at 0 (everything back to the customer). Without a monitor the operator
/// reports the figure, and an overdue settlement counts full availability. Each settlement emits the
/// commitment to the probe records behind its figure (`evidence`, see the README for its encoding). Each charge is split at once: provider i gets floor(charge·cᵢ/P), the
/// owner the rest (its margin and the rounding dust), where cᵢ are the components and P their sum plus
/// the margin.
interface IConferenceEscrow {
    /// @notice The status of an agreement. `None` means the id was never used.
    enum Status {
        None,
        Idle,
        Requested,
        Active,
        Ended,
        Settled,
        Refunded
    }

    /// @notice Why a conference that never started was called off.
    enum CancelReason {
        CancelledByCustomer,
        DeclinedByOperator,
        ActivationTimedOut
    }

    /// @notice One version of an offer's terms, as the offer book published it. Slot 0 holds everything
    /// signing reads, and whether a monitor reports (every settlement reads it). Never edited, except that `open` is cleared when a newer version or a retirement
    /// replaces it.
    /// @param price The sum of the components plus the margin, per unit of the model: the whole conference
    /// (FixedPrice), a second (DynamicPrice, FlexiblePeriod) or a minute (TimeLimited).
    /// @param maxDuration The longest conference (FixedPrice, DynamicPrice), the most seconds one may buy
    /// (TimeLimited) or the longest window one may reserve (FlexiblePeriod).
    /// @param regions Bit i set: every provider of these terms serves region i.
    /// @param gdprSurchargeBps Added to the price when the customer requires GDPR compliance.
    /// @param regionSurchargeBps Added to the price when the customer narrows the regions allowed.
    /// @param tokenId 0 for ETH, else an ERC-20 token added by the admin.
    /// @param gdpr Every provider of these terms declared itself GDPR-compliant when they were published.
    /// @param open Customers may sign these terms.
    /// @param owner The offer's owner: receives the margin and the rounding dust of every split.
    /// @param minimumCharge FlexiblePeriod only: the non-refundable charge for keeping the service ready.
    /// @param monitored Whether `monitor` is set: kept in slot 0, which every settlement reads anyway, so that
    /// a settlement learns who measures without reading another slot; the escrow derives it.
    /// @param monitor The account of the terms' provider with the Monitoring role, whose signed report alone
    /// settles their conferences; address(0) when the terms name no monitor (the operator reports).
    /// @param shares The providers and their price components.
    struct Terms {
        uint88 price;
        uint40 maxDuration;
        uint24 offerId;
        uint32 regions;
        uint16 gdprSurchargeBps;
        uint16 regionSurchargeBps;
        IOfferBook.Model model;
        uint8 tokenId;
        bool gdpr;
        bool open;
        bool monitored;
        address owner;
        uint88 margin;
        uint88 minimumCharge;
        address monitor;
        IOfferBook.Share[] shares;
    }

    /// @notice One agreement, as {agreementOf} returns it (stored in one slot when it matches its terms, the
    /// rest read from them).
    /// @param allowedRegions Bit i set: the conference may run in region i.
    /// @param gdpr The customer requires every provider to be GDPR-compliant.
    /// @param region Where the operator said the current or last conference ran.
    /// @param price The terms' price per unit, before the constraint surcharge.
    /// @param surchargeBps The constraint surcharge, in basis points: every deposit and charge is the amount at
    /// `price` raised by it as a whole, rounded down once.
    /// @param duration The longest the next conference may run: the terms' maximum (FixedPrice,
    /// DynamicPrice, and every agreement opened from an account), the seconds still unused (TimeLimited) or
    /// the window's length (FlexiblePeriod).
    /// @param startedAt When the operator activated; while Requested, when the start was requested (or the
    /// order opened).
    /// @param endedAt When the last conference ended, if it ended by a call of its own ({stop}, {end},
    /// {stopBySignature}); 0 when it was ended and settled at once ({stopAndSettle}), whose end is only in its
    /// {AgreementEnded} event.
    struct Agreement {
        address customer;
        uint32 termsId;
        uint32 allowedRegions;
        IOfferBook.Model model;
        uint8 tokenId;
        bool gdpr;
        Status status;
        uint8 region;
        uint88 price;
        uint24 surchargeBps;
        uint40 duration;
        uint40 startedAt;
        uint40 endedAt;
    }

    /// @notice A TimeLimited agreement's account of minutes.
    /// @param sessions The sessions settled so far (paid or not). The running one is `sessions` + 1, the
    /// number a signed `Stop` names (1 for every other model, whose account is all zero).
    struct MinutesAccount {
        uint88 deposit;
        uint88 charged;
        uint32 sessions;
    }

    /// @notice A FlexiblePeriod agreement's reserved window [from, to) and its minimum charge.
    struct Window {
        uint40 from;
        uint40 to;
        uint88 minimumCharge;
    }

    /// @notice A customer's account in one token: deposited once, drawn on by orders.
    /// @param free What orders may lock and the customer may withdraw.
    /// @param locked The deposits of the account's agreements not yet settled or refunded.
    /// @param withdrawal The amount of the pending withdrawal request (0: none).
    /// @param withdrawalAt When it was requested; it may complete ACTIVATION_WINDOW later.
    struct Account {
        uint128 free;
        uint128 locked;
        uint128 withdrawal;
        uint40 withdrawalAt;
    }

    /// @notice What a customer signs (EIP-712) to open one conference from its account, without a transaction:
    /// `Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,uint256 nonce,uint40 deadline)`,
    /// domain {name "ConferenceEscrow", version "1", chainId, verifyingContract: this escrow} ({orderDigest}).
    /// The domain binds it to this chain and this escrow, the signature to the customer, and `nonce` (any
    /// unused number, Permit2-style: word = nonce / 256, bit = nonce % 256) makes it usable at most once.
    /// @param termsId The offer's terms version: its model and price are what the customer agrees to.
    /// @param allowedRegions, gdpr The constraints, as for {sign}.
    /// @param maxCost The most the order may lock (and so cost): the agreement's deposit at the terms' longest
    /// conference, after the constraint surcharge.
    /// @param deadline The last second at which the operator may open it.
    struct Order {
        uint32 termsId;
        uint32 allowedRegions;
        bool gdpr;
        uint256 maxCost;
        uint256 nonce;
        uint40 deadline;
    }

    /// @notice Emitted when the offer book publishes a terms version: customers may sign it from now on. It
    /// carries every term an agreement's amounts and constraints depend on (all of {Terms} but its owner, margin
    /// and shares, which the offer book's events give), so that an auditor or the backend needs no state read.
    /// @param price The price per unit (per second; per minute for TimeLimited; the whole price for FixedPrice).
    /// @param maxDuration The longest conference, or window, in seconds.
    /// @param minimumCharge FlexiblePeriod only: the non-refundable charge for keeping the service ready (0 else).
    /// @param regions, gdpr Where the providers serve, and whether all of them declare GDPR compliance.
    /// @param gdprSurchargeBps, regionSurchargeBps The constraint surcharges an agreement may add.
    /// @param monitor The monitor whose signed report alone settles conferences; address(0) for none.
    event TermsPublished(
        uint32 indexed termsId,
        uint32 indexed offerId,
        IOfferBook.Model model,
        uint8 tokenId,
        uint256 price,
        uint256 maxDuration,
        uint256 minimumCharge,
        uint32 regions,
        bool gdpr,
        uint16 gdprSurchargeBps,
        uint16 regionSurchargeBps,
        address monitor
    );

    /// @notice Emitted when a terms version closes to new agreements (replaced by a vote, or retired).
    event TermsClosed(uint32 indexed termsId);

    /// @notice Emitted when a customer signs (pays for) an agreement, or the operator opens its order. It carries
    /// everything the agreement's amounts depend on, as {agreementOf} returns them at signing, so that its
    /// deposit and every later charge can be recomputed from events alone (see the README's price table).
    /// @param deposit What the customer paid (direct) or what the order locked in its account.
    /// @param price The terms' price per unit, before the surcharge.
    /// @param surchargeBps The constraint surcharge, in basis points, applied to each amount as a whole.
    /// @param allowedRegions The regions the conference may run in (already intersected with the terms').
    /// @param gdpr Whether the customer requires GDPR compliance.
    /// @param duration The longest the first conference may run: the terms' maximum (FixedPrice, DynamicPrice,
    /// and every agreement opened from an account), the minutes bought in seconds (TimeLimited) or the reserved
    /// window's length (FlexiblePeriod).
    event AgreementSigned(
        uint256 indexed agreementId,
        uint32 indexed termsId,
        address indexed customer,
        uint256 deposit,
        IOfferBook.Model model,
        uint8 tokenId,
        uint256 price,
        uint24 surchargeBps,
        uint32 allowedRegions,
        bool gdpr,
        uint256 duration
    );

    /// @notice Emitted with {AgreementSigned} for a FlexiblePeriod agreement.
    event WindowReserved(uint256 indexed agreementId, uint256 from, uint256 to);

    /// @notice Emitted when the customer asks a TimeLimited or FlexiblePeriod conference to start.
    event StartRequested(uint256 indexed agreementId);

    /// @notice Emitted when the operator has started the conference in `region`; it ends by itself at `endsAt`.
    event AgreementActivated(uint256 indexed agreementId, uint8 region, uint256 endsAt);

    /// @notice Emitted when a running conference ends: stopped by the customer, by its signature (`by` is who
    /// submitted it), or expired.
    event AgreementEnded(uint256 indexed agreementId, uint256 endedAt, address by);

    /// @notice Emitted when a conference is paid for. `evidence` commits to the probe records behind
    /// `availabilityBps` (0 for an overdue settlement, which has none); `refund` is 0 for a TimeLimited session
    /// (the unused minutes come back at {close}); `refundDeferred` is true when the refund was credited, not sent:
    /// always for an agreement opened from an account (its refund goes to the account's free balance and its
    /// lock is released), and for a direct one whose push failed (credited for {withdraw}).
    event AgreementSettled(
        uint256 indexed agreementId,
        uint16 availabilityBps,
        bytes32 evidence,
        uint256 charge,
        uint256 refund,
        bool refundDeferred
    );

    /// @notice Emitted when a conference that never started is called off. `refund` is the whole deposit,
    /// or 0 when the agreement goes back to Idle: a TimeLimited session (nothing was consumed; the account
    /// stays open) or a FlexiblePeriod start its customer called off, or that timed out without being owed
    /// an activation (the reservation stays). From an account: always the whole lock, back to the account's
    /// free balance (`refundDeferred` true).
    event StartCancelled(uint256 indexed agreementId, CancelReason reason, uint256 refund, bool refundDeferred);

    /// @notice Emitted when a customer closes a TimeLimited account and gets its unused minutes back.
    event AgreementClosed(uint256 indexed agreementId, uint256 refund, bool refundDeferred);

    /// @notice Emitted when a refund could not be sent and is kept for `account` to withdraw, or when the
    /// offer owner's share of a charge is credited (not for an account agreement's refund, which goes to the
    /// account's free balance: see {accountOf}).
    event Credited(address indexed account, uint8 indexed tokenId, uint256 amount);

    /// @notice Emitted when an account withdraws its credit.
    event Withdrawn(address indexed account, uint8 indexed tokenId, uint256 amount);

    /// @notice Emitted when a provider's earnings are paid to its payout address.
    event EarningsWithdrawn(uint32 indexed providerId, uint8 indexed tokenId, address payout, uint256 amount);

    /// @notice Emitted when the admin adds an ERC-20 payment token.
    event TokenAdded(uint8 indexed tokenId, address token);

    /// @notice Emitted when the admin pauses or unpauses signing.
    event PausedSet(bool paused);

    /// @notice Emitted when a customer pays into its account.
    event Deposited(address indexed customer, uint8 indexed tokenId, uint256 amount);

    /// @notice Emitted when a customer asks to withdraw from its account; it may complete at `dueAt`.
    event WithdrawalRequested(address indexed customer, uint8 indexed tokenId, uint256 amount, uint256 dueAt);

    /// @notice Emitted when a withdrawal from an account completes (`amount` is what was free, up to the request).
    event AccountWithdrawn(address indexed customer, uint8 indexed tokenId, uint256 amount);

    /// @notice Emitted with {AgreementSigned} when the operator opens a customer's signed order.
    event OrderFilled(uint256 indexed agreementId, address indexed customer, uint256 nonce);

    /// @notice Emitted when a customer cancels the unused order nonces `mask` of word `word` (nonces
    /// word·256 + i for each bit i set).
    event OrdersCancelled(address indexed customer, uint256 word, uint256 mask);

    /// @notice Emitted by {batch} for a call that reverted, with its revert data (the error and its
    /// arguments): that call changed nothing, and the others went on.
    event BatchCallFailed(uint256 index, bytes reason);

    // ----------------------------------------------------------------------------------------------
    // Customer accounts: one deposit, many conferences, each opened by a signed order
    // ----------------------------------------------------------------------------------------------

    /// @notice Pays `amount` of token `tokenId` into the caller's account.
    /// @dev Requirements: `amount` is not zero and the account stays below 2^128; ETH: `msg.value` is `amount`;
    /// ERC-20: no ETH, and the contract receives exactly `amount` (allowance needed). Deposits are never paused.
    /// Emits {Deposited}.
    function depositToAccount(uint8 tokenId, uint256 amount) external payable;

    /// @notice Asks to withdraw up to `amount` from the caller's account, replacing any earlier request. The
    /// withdrawal completes ({completeWithdrawal}) ACTIVATION_WINDOW later: until then the operator may still
    /// open orders the customer signed, so a conference it accepted cannot be left unpaid; after it, nothing
    /// the operator does can keep the free balance from the customer. 0 withdraws a request.
    /// @dev Never paused. Emits {WithdrawalRequested}.
    function requestWithdrawal(uint8 tokenId, uint256 amount) external;

    /// @notice Pays the caller what is free in its account, up to its request's amount, once the request has
    /// waited ACTIVATION_WINDOW. The locked part comes back to the free balance as each agreement settles.
    /// @dev Requirements: a request, due; something free. Never paused. Emits {AccountWithdrawn}.
    function completeWithdrawal(uint8 tokenId) external;

    /// @notice Cancels the caller's order nonces word·256 + i for each bit i of `mask`: orders signed with
    /// them can no longer be opened.
    /// @dev Emits {OrdersCancelled}.
    function cancelOrders(uint256 word, uint256 mask) external;

    // ----------------------------------------------------------------------------------------------
    // Customer: direct agreements, one transaction each
    // ----------------------------------------------------------------------------------------------

    /// @notice Signs a FixedPrice or DynamicPrice agreement by paying its deposit: the price (FixedPrice) or
    /// the price per second × the maximum duration (DynamicPrice), raised by the constraint surcharge. The
    /// conference is requested at once.
    /// @dev Requirements: signing is not paused; the terms are open and of one of these models; the
    /// constraints can be met (see {quote}); ETH: `msg.value` is the deposit; ERC-20: no ETH, and the
    /// contract receives exactly the deposit from the caller (allowance needed). Emits {AgreementSigned}.
    /// @param allowedRegions Bit i set: the conference may run in region i; 0 allows every region the terms
    /// serve at no surcharge.
    /// @param gdpr Whether every provider must be GDPR-compliant (at the terms' surcharge).
    function sign(uint32 termsId, uint32 allowedRegions, bool gdpr) external payable returns (uint256 agreementId);

    /// @notice Buys `minuteCount` minutes of a TimeLimited offer, to be used in any number of sessions.
    /// @dev Requirements as {sign}; `minuteCount` is not zero and `minuteCount`·60 ≤ the terms' maximum duration.
    /// Deposit: price per minute × `minuteCount`. Emits {AgreementSigned}.
    function buyMinutes(uint32 termsId, uint32 allowedRegions, bool gdpr, uint32 minuteCount)
        external
        payable
        returns (uint256 agreementId);

    /// @notice Reserves the window [`from`, `to`) of a FlexiblePeriod offer. Deposit: the minimum charge plus
    /// the price per second × the window's length (the most it can be charged).
    /// @dev Requirements as {sign}; `from` < `to`; `to` is in the future; `to` - `from` ≤ the terms' maximum
    /// duration. Emits {AgreementSigned} and {WindowReserved}.
    function reserve(uint32 termsId, uint32 allowedRegions, bool gdpr, uint40 from, uint40 to)
        external
        payable
        returns (uint256 agreementId);

    /// @notice Asks for a TimeLimited session or the FlexiblePeriod conference to start.
    /// @dev Requirements: the caller is the customer; the agreement is Idle; TimeLimited: minutes remain;
    /// FlexiblePeriod: now is inside the window (a start the customer called off may be asked again). A
    /// FlexiblePeriod start within ACTIVATION_WINDOW of the window's end is not owed an activation (see the
    /// lifecycle). Emits {StartRequested}.
    function start(uint256 agreementId) external;

    /// @notice Stops the conference. Before it started: calls the start off (see the lifecycle). While it
    /// runs: ends it now, or at its end time if that has passed.
    /// @dev Requirements: the caller is the customer; the agreement is Requested or Active.
    /// Emits {StartCancelled} or {AgreementEnded}.
    function stop(uint256 agreementId) external;

    /// @notice Closes a TimeLimited account: the unused minutes' money goes back to the customer.
    /// @dev Requirements: the caller is the customer; the agreement is TimeLimited and Idle.
    /// Emits {AgreementClosed}.
    function close(uint256 agreementId) external;

    // ----------------------------------------------------------------------------------------------
    // Operator
    // ----------------------------------------------------------------------------------------------

    /// @notice Opens `customer`'s signed order: locks its deposit (as {sign} would take it: the terms' longest
    /// conference, after the surcharge) from the account, and requests the conference. From here it is an
    /// agreement like a signed one (activate, stop, settle), except that its refund returns to the account.
    /// On an account every model opens one conference of at most the terms' maxDuration: TimeLimited and
    /// FlexiblePeriod are charged per use as their direct agreements are (minutes used; minimum + seconds
    /// used), with the account in place of bought minutes or a reserved window.
    /// @dev Requirements: the caller has OPERATOR_ROLE; signing is not paused; `deadline` has not passed;
    /// the nonce is unused; `signature` is the customer's over Order (its own key, or ERC-1271); the terms
    /// are open and the constraints met; the deposit ≤ `maxCost` and ≤ the account's free balance.
    /// Emits {AgreementSigned} and {OrderFilled}.
    function openOrder(Order calldata order, address customer, bytes calldata signature)
        external
        returns (uint256 agreementId);

    /// @notice Countersigns: the conference is running in `region` from now on.
    /// @dev Requirements: the caller has OPERATOR_ROLE; the agreement is Requested; the activation window
    /// is open; `region` is allowed by the agreement. Emits {AgreementActivated}.
    function activate(uint256 agreementId, uint8 region) external;

    /// @notice Calls off a start the service cannot serve: everything back, a FlexiblePeriod minimum included
    /// (the service was not ready).
    /// @dev Requirements: the caller has OPERATOR_ROLE; the agreement is Requested. Emits {StartCancelled}.
    function decline(uint256 agreementId) external;

    /// @notice Pays for an ended conference given its measured availability, or for a FlexiblePeriod window
    /// that passed without a conference (the minimum charge, for the readiness measured in the window).
    /// @dev Requirements: `availabilityBps` ≤ 10,000; the agreement is Ended, or FlexiblePeriod with its
    /// window over and Idle or Requested too late to be owed an activation; and either the terms name a
    /// monitor and `report` is its signature over Availability(agreementId, session, startedAt, endedAt,
    /// availabilityBps, evidence) for this conference and its measured period (see {reportDigest}), whoever
    /// calls; or they name none, the caller has OPERATOR_ROLE and `report` is empty. Emits {AgreementSettled}.
    /// @param evidence The commitment to the probe records behind the figure.
    /// @param report The monitor's signature (EIP-712; ERC-1271 for a contract account), or empty.
    function settle(uint256 agreementId, uint16 availabilityBps, bytes32 evidence, bytes calldata report) external;

    /// @notice {stopBySignature}, then {settle}: the customer's signed stop and the settlement in one
    /// transaction. With a monitor, its report must name the end this stop gives the conference. The end is
    /// kept in {AgreementEnded} only: `agreementOf(id).endedAt` stays 0.
    /// @dev Requirements: as {settle} and {stopBySignature}. Emits {AgreementEnded} and {AgreementSettled}.
    function stopAndSettle(
        uint256 agreementId,
        uint16 availabilityBps,
        bytes32 evidence,
        bytes calldata report,
        uint40 stoppedAt,
        uint40 deadline,
        bytes calldata signature
    ) external;

    // ----------------------------------------------------------------------------------------------
    // Anyone: the calls a contract cannot make by itself
    // ----------------------------------------------------------------------------------------------

    /// @notice Ends a running conference at the time its customer signed (EIP-712 `Stop`): the customer stops
    /// without paying gas, and anyone holding its signature (the customer, a relayer, a watchtower) may submit
    /// it, so no operator can sit on it. The end is the signed time, never later than now nor than the
    /// conference's end time, never earlier than its start. The settlement stays the operator's ({settle}),
    /// or anyone's once SETTLEMENT_WINDOW has passed ({settleOverdue}).
    /// @dev Requirements: the agreement is Active; `deadline` has not passed; the signature is the customer's
    /// over Stop(agreementId, session, stoppedAt, deadline), `session` being this conference's number
    /// (1 + {MinutesAccount-sessions}): the customer's own key (an EOA, or an account that delegated its code
    /// under EIP-7702), or else its ERC-1271 answer. Emits {AgreementEnded}.
    function stopBySignature(uint256 agreementId, uint40 stoppedAt, uint40 deadline, bytes calldata signature) external;

    /// @notice Ends a conference whose time is up, at its end time.
    /// @dev Requirements: the agreement is Active and its end time has come. Emits {AgreementEnded}.
    function end(uint256 agreementId) external;

    /// @notice Calls off a start the operator did not activate within ACTIVATION_WINDOW (see the lifecycle for
    /// the refund: a FlexiblePeriod start that was not owed an activation keeps the minimum).
    /// @dev Requirements: the agreement is Requested and the window has passed. Emits {StartCancelled}.
    function reclaim(uint256 agreementId) external;

    /// @notice Settles a conference nobody settled within SETTLEMENT_WINDOW of its end (or of a FlexiblePeriod
    /// window's end, for a window without a conference): at 0 availability when the terms name a monitor (no
    /// report is no evidence: everything back to the customer), at full availability when they do not (the
    /// operator, which alone reports for such terms, let its window pass).
    /// @dev Requirements: the agreement is settleable as for {settle}, and the settlement window has passed.
    /// Emits {AgreementSettled} with evidence 0.
    function settleOverdue(uint256 agreementId) external;

    /// @notice Runs each of `calls` (this contract's own functions, ABI-encoded) as if the caller had sent it
    /// alone, in order. A call that reverts changes nothing and is reported ({BatchCallFailed}); the others go
    /// on. The operator sends its activations, openings and settlements this way, many per transaction.
    /// @dev Not payable: a batched call sees no ETH. Returns, per call, whether it succeeded. A call that reverts
    /// without naming an error (it ran out of gas, or names no function) reverts the whole batch
    /// (`Escrow_BatchCallWithoutReason`): a short gas limit skips nothing.
    function batch(bytes[] calldata calls) external returns (bool[] memory succeeded);

    /// @notice Pays the caller's credit in token `tokenId` (refunds that could not be sent, the owner's
    /// margin) to the caller.
    /// @dev Requirements: the credit is not zero. Emits {Withdrawn}.
    function withdraw(uint8 tokenId) external;

    /// @notice Pays provider `providerId`'s earnings in token `tokenId` to its payout address, when the
    /// provider chooses: its account or its payout address calls it (so that a provider moving its payout
    /// away from a lost address cannot be front-run into paying that address). A provider that left may too.
    /// @dev Requirements: the earnings are not zero; the caller is the provider's account or payout address.
    /// Emits {EarningsWithdrawn}.
    function withdrawEarnings(uint32 providerId, uint8 tokenId) external;

    // ----------------------------------------------------------------------------------------------
    // Offer book
    // ----------------------------------------------------------------------------------------------

    /// @notice Stores a new terms version, open for signing, and closes `replacesTermsId` (0 for none).
    /// @dev Requirements: the caller is BOOK. Emits {TermsPublished} (and {TermsClosed}).
    function publishTerms(Terms calldata terms, uint32 replacesTermsId) external returns (uint32 termsId);

    /// @notice Closes a terms version to new agreements.
    /// @dev Requirements: the caller is BOOK. Emits {TermsClosed}.
    function closeTerms(uint32 termsId) external;

    // ----------------------------------------------------------------------------------------------
    // Admin
    // ----------------------------------------------------------------------------------------------

    /// @notice Adds an ERC-20 payment token. Only plain tokens are supported: see SECURITY.md.
    /// @dev Requirements: the caller has DEFAULT_ADMIN_ROLE; fewer than 255 tokens. Emits {TokenAdded}.
    function addToken(address token) external returns (uint8 tokenId);

    /// @notice Pauses or unpauses signing: new agreements ({sign}, {buyMinutes}, {reserve}) and the opening of
    /// orders ({openOrder}). Nothing else ever pauses: deposits and withdrawals from accounts go on.
    /// @dev Requirements: the caller has DEFAULT_ADMIN_ROLE. Emits {PausedSet}.
    function setPaused(bool paused) external;

    // ----------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------

    /// @notice What signing `termsId` with these constraints costs: the deposit, the terms' price per unit and
    /// the constraint surcharge (basis points) that every charge of the agreement will be raised by.
    /// @dev Reverts as signing would (unknown or closed terms, constraints that cannot be met). `quantity`
    /// is the minutes (TimeLimited) or the window's seconds (FlexiblePeriod), ignored otherwise.
    function quote(uint32 termsId, uint32 allowedRegions, bool gdpr, uint256 quantity)
        external
        view
        returns (uint256 deposit, uint256 price, uint24 surchargeBps);

    /// @notice The terms version `termsId`; reverts if there is none.
    function termsOf(uint32 termsId) external view returns (Terms memory);

    /// @notice The number of terms versions ever published (the highest id).
    function termsCount() external view returns (uint32);

    /// @notice The agreement `agreementId`; reverts if there is none.
    function agreementOf(uint256 agreementId) external view returns (Agreement memory);

    /// @notice A TimeLimited agreement's account of minutes (zero for other models).
    function minutesAccountOf(uint256 agreementId) external view returns (MinutesAccount memory);

    /// @notice A FlexiblePeriod agreement's window (zero for other models).
    function windowOf(uint256 agreementId) external view returns (Window memory);

    /// @notice What the agreement's customer paid in.
    function depositOf(uint256 agreementId) external view returns (uint256);

    /// @notice The EIP-712 digest a customer signs to stop conference `session` of the agreement (1 +
    /// {MinutesAccount-sessions} while it runs) without gas.
    function stopDigest(uint256 agreementId, uint32 session, uint40 stoppedAt, uint40 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a monitor signs to report the availability of conference `session` of the
    /// agreement over [startedAt, endedAt), with `evidence` the commitment to its probe records.
    function reportDigest(
        uint256 agreementId,
        uint32 session,
        uint40 startedAt,
        uint40 endedAt,
        uint16 availabilityBps,
        bytes32 evidence
    ) external view returns (bytes32);

    /// @notice The earnings provider `providerId` can withdraw in token `tokenId`.
    function earningsOf(uint32 providerId, uint8 tokenId) external view returns (uint256);

    /// @notice The credit `account` can withdraw in token `tokenId`.
    function creditOf(address account, uint8 tokenId) external view returns (uint256);

    /// @notice The ERC-20 token with id `tokenId` (address(0) for 0, ETH).
    function tokenOf(uint8 tokenId) external view returns (address);

    /// @notice The number of agreements ever signed (the highest id).
    function agreementCount() external view returns (uint256);

    /// @notice `customer`'s account in token `tokenId`.
    function accountOf(address customer, uint8 tokenId) external view returns (Account memory);

    /// @notice Whether `customer`'s order nonce was used or cancelled.
    function orderNonceUsed(address customer, uint256 nonce) external view returns (bool);

    /// @notice The EIP-712 digest a customer signs to place `order`.
    function orderDigest(Order calldata order) external view returns (bytes32);
}
