// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm, endedAtLogged, signReport, str} from "../Base.t.sol";
import {CustomerWallet} from "./CustomerWallet.sol";
import {MockStablecoin} from "../mocks/Tokens.sol";
import {ConferenceEscrow} from "../../src/ConferenceEscrow.sol";
import {OfferBook} from "../../src/OfferBook.sol";
import {ProviderRegistry} from "../../src/ProviderRegistry.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";

/// @notice Drives the escrow and the offer book through random but valid sequences: three customers (two
/// EOAs and a contract that refuses ETH and can be blocked by the stablecoin), both payment kinds, all four
/// models, votes that publish new terms versions, withdrawals and time. Each call picks an agreement (or
/// offer, proposal, account) for which the action is possible, so that nearly every call does something;
/// impossible calls are skipped, never sent. It keeps ghost accounts of every agreement (deposit, what was
/// charged and refunded, measured on the balances), of every settlement event, and of every status it saw,
/// and records violations instead of reverting (a revert would be swallowed: fail_on_revert is false).
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    // Violation kinds, each checked by its own invariant.
    uint8 public constant TRANSITION = 0;
    uint8 public constant CHARGE = 1;
    uint8 public constant REVERT = 2;
    uint8 public constant EVENTS = 3;
    uint8 public constant KINDS = 4;

    uint256 internal constant MAX_AGREEMENTS = 24;
    /// {_pick}'s model mask for any agreement: bits 0..3 the direct ones by model, 4..7 those opened from an
    /// account (one conference each, whatever the model).
    uint256 internal constant ANY = 255;
    /// The key of the registry's Monitoring provider (the tests' `monitor`), and a key that is nobody's.
    uint256 internal constant MONITOR_KEY = 13;
    uint256 internal constant STRANGER_KEY = 5;
    bytes32 internal constant EVIDENCE = keccak256("probe records");
    uint40 internal immutable ACTIVATION_WINDOW;
    uint40 internal immutable SETTLEMENT_WINDOW;

    bytes32 internal constant SETTLED_EVENT =
        keccak256("AgreementSettled(uint256,uint16,bytes32,uint256,uint256,bool)");
    bytes32 internal constant ENDED_EVENT = keccak256("AgreementEnded(uint256,uint256,address)");
    bytes32 internal constant CLOSED_EVENT = keccak256("AgreementClosed(uint256,uint256,bool)");
    bytes32 internal constant CANCELLED_EVENT = keccak256("StartCancelled(uint256,uint8,uint256,bool)");
    bytes32 internal constant ORDER_FILLED_EVENT = keccak256("OrderFilled(uint256,address,uint256)");

    ConferenceEscrow public immutable escrow;
    OfferBook public immutable book;
    ProviderRegistry public immutable registry;
    MockStablecoin public immutable usd;
    uint8 public immutable usdId;
    address public immutable admin;
    address public immutable operator;
    CustomerWallet public immutable wallet;

    address[3] public customers;
    uint256[3] internal keys;
    uint32[3] public providerIds;
    address[3] public payouts;
    uint32[] public offerIds;

    /// Everything the handler knows of one agreement.
    struct Ghost {
        uint8 cust;
        uint8 tokenId;
        IOfferBook.Model model;
        IConferenceEscrow.Status last;
        uint32 termsId;
        uint88 price; // the terms' price per unit, as quoted at signing
        uint24 bps; // the constraint surcharge, applied to each amount as a whole
        uint256 minimum; // FlexiblePeriod, after the surcharge
        uint256 deposit;
        uint256 charged; // measured: what providers and the owner were credited
        uint256 refunded; // measured: what reached the customer (sent or credited)
        uint256 termsPrice; // P of the signed terms
        uint88[3] comps; // the signed terms' component per provider (0: not a member)
        bytes32 termsHash;
        uint40 from; // FlexiblePeriod window
        uint40 to;
        uint32 settleEvents;
        uint32 endEvents;
        uint32 closeEvents;
        uint32 cancelEvents;
        bool fromAccount; // opened from the customer's account by a signed order
        uint256 maxCost; // the order's limit
        uint256 nonce; // the order's nonce
    }

    uint256[] public ids;
    uint32[] public signedTerms;
    mapping(uint32 termsId => bytes32) public signedTermsHash;
    mapping(uint256 id => Ghost) internal _g;

    // Ghost totals per token.
    mapping(uint8 tokenId => uint256) public expectedCharged; // sum of charges by the formulas
    mapping(uint8 tokenId => uint256) public earningsWithdrawn;
    mapping(uint8 tokenId => uint256) public ownerWithdrawn;

    mapping(uint8 kind => uint256) public violations;
    mapping(uint8 kind => string) public firstViolation;

    // Customer accounts, per customer (index) and token: what went in and out (measured on balances).
    mapping(uint8 cust => mapping(uint8 tokenId => uint256)) public accountDeposited;
    mapping(uint8 cust => mapping(uint8 tokenId => uint256)) public accountWithdrawn;
    /// OrderFilled events per customer and nonce (at most one each).
    mapping(address customer => mapping(uint256 nonce => uint256)) public ordersFilled;
    uint256[] public filledNonces;
    mapping(uint256 nonce => address) public nonceCustomer;
    uint256 internal _nextNonce;
    /// The last order the operator opened: replayed as a batch's bad item.
    bytes internal _lastOrderCall;

    // Proposals the handler made, and who voted.
    uint256[] public proposals;
    mapping(uint256 proposalId => mapping(uint32 providerId => bool)) internal _voted;

    // What happened, for the report.
    mapping(string action => uint256) public done;
    uint256 public time;

    constructor(
        ConferenceEscrow escrow_,
        MockStablecoin usd_,
        address admin_,
        address operator_,
        uint32[3] memory providerIds_,
        uint32[] memory offerIds_
    ) {
        escrow = escrow_;
        book = escrow_.BOOK();
        registry = ProviderRegistry(address(escrow_.REGISTRY()));
        usd = usd_;
        usdId = 1;
        admin = admin_;
        operator = operator_;
        ACTIVATION_WINDOW = escrow_.ACTIVATION_WINDOW();
        SETTLEMENT_WINDOW = escrow_.SETTLEMENT_WINDOW();
        providerIds = providerIds_;
        for (uint256 i; i < 3; ++i) {
            payouts[i] = registry.providerOf(providerIds_[i]).payout;
        }
        offerIds = offerIds_;
        time = block.timestamp;

        keys = [uint256(101), 102, 103];
        customers[0] = vm.addr(101);
        customers[1] = vm.addr(102);
        wallet = new CustomerWallet(vm.addr(103));
        customers[2] = address(wallet);
        for (uint256 i; i < 3; ++i) {
            vm.deal(customers[i], 1e30);
            usd.mint(customers[i], 1e30);
        }
        vm.prank(customers[0]);
        usd.approve(address(escrow), type(uint256).max);
        vm.prank(customers[1]);
        usd.approve(address(escrow), type(uint256).max);
        wallet.exec(address(usd), abi.encodeCall(usd.approve, (address(escrow), type(uint256).max)), 0);
    }

    modifier act() {
        vm.warp(time);
        _;
    }

    // =============================================================================================
    // Customers
    // =============================================================================================

    function sign(uint256 custSeed, uint256 offerSeed, uint256 regionSeed, bool gdpr) external act {
        _sign(custSeed, offerSeed, regionSeed, gdpr, 0, 0, (1 << 0) | (1 << 1));
    }

    function buyMinutes(uint256 custSeed, uint256 offerSeed, uint256 regionSeed, bool gdpr, uint256 minuteSeed)
        external
        act
    {
        _sign(custSeed, offerSeed, regionSeed, gdpr, minuteSeed, 0, 1 << 2);
    }

    function reserve(uint256 custSeed, uint256 offerSeed, uint256 regionSeed, bool gdpr, uint256 windowSeed)
        external
        act
    {
        _sign(custSeed, offerSeed, regionSeed, gdpr, 0, windowSeed, 1 << 3);
    }

    function start(uint256 idSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Idle), (1 << 2) | (1 << 3));
        if (!found) return _fallback(idSeed);
        Ghost storage a = _g[id];
        if (a.model == IOfferBook.Model.TimeLimited) {
            if (escrow.agreementOf(id).duration == 0) return _closeId(id); // no minutes left: close instead
        } else {
            if (time >= a.to) return _settleId(id, idSeed); // the window is over: settle it instead
            if (time < a.from) _warpTo(a.from);
        }
        Pre memory p = _pre(id);
        _customerCall(id, abi.encodeCall(escrow.start, (id)), "start");
        _post(p, 0, 0);
    }

    function stop(uint256 idSeed, uint256 waitSeed) external act {
        (bool found, uint256 id) =
            _pick(idSeed, _bit(IConferenceEscrow.Status.Requested) | _bit(IConferenceEscrow.Status.Active), ANY);
        if (!found) return _fallback(idSeed);
        _warp(waitSeed % 1200);
        Pre memory p = _pre(id);
        _customerCall(id, abi.encodeCall(escrow.stop, (id)), "stop");
        _post(p, 0, 0);
    }

    function close(uint256 idSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Idle), 1 << 2);
        if (!found) return _fallback(idSeed);
        _closeId(id);
    }

    function _closeId(uint256 id) internal {
        Pre memory p = _pre(id);
        _customerCall(id, abi.encodeCall(escrow.close, (id)), "close");
        _post(p, 0, 0);
    }

    // =============================================================================================
    // Operator
    // =============================================================================================

    function activate(uint256 idSeed, uint256 regionSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Requested), ANY);
        if (!found) return _fallback(idSeed);
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        if (time > uint256(ag.startedAt) + ACTIVATION_WINDOW) return _reclaimId(id); // too late: reclaim it instead
        if (_g[id].model == IOfferBook.Model.FlexiblePeriod && !_g[id].fromAccount && time >= _g[id].to) {
            return _reclaimId(id);
        }
        uint8 region = _regionOf(ag.allowedRegions, regionSeed);
        Pre memory p = _pre(id);
        _operatorCall(abi.encodeCall(escrow.activate, (id, region)), "activate", regionSeed >> 8);
        _post(p, 0, 0);
    }

    function decline(uint256 idSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Requested), ANY);
        if (!found) return _fallback(idSeed);
        Pre memory p = _pre(id);
        _operatorCall(abi.encodeCall(escrow.decline, (id)), "decline", idSeed >> 8);
        _post(p, 0, 0);
    }

    function settle(uint256 idSeed, uint256 availabilitySeed) external act {
        (bool found, uint256 id) = _pickSettleable(idSeed);
        if (!found) return _fallback(idSeed);
        _settleId(id, availabilitySeed);
    }

    function _settleId(uint256 id, uint256 availabilitySeed) internal {
        Ghost storage a = _g[id];
        if (a.last != IConferenceEscrow.Status.Ended && time < a.to) _warpTo(a.to);
        uint16 availability = _availability(availabilitySeed);
        uint256 charge = _expectedSettlement(id, availability);
        Pre memory p = _pre(id);
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        (uint256 from, uint256 to) =
            a.last == IConferenceEscrow.Status.Ended ? (uint256(ag.startedAt), uint256(ag.endedAt)) : (a.from, a.to);
        bytes memory report = _reportFor(id, from, to, availability, availabilitySeed);
        _operatorCall(
            abi.encodeCall(escrow.settle, (id, availability, EVIDENCE, report)), "settle", availabilitySeed >> 8
        );
        _post(p, charge, availability);
    }

    /// The report a settlement of `id` over [from, to) carries: none without a monitor. With one, first tries
    /// what must be refused (no report, one signed by a stranger, an altered figure or evidence, another
    /// conference), checking that each changes nothing, then returns the monitor's own.
    function _reportFor(uint256 id, uint256 from, uint256 to, uint16 availability, uint256 seed)
        internal
        returns (bytes memory)
    {
        if (escrow.termsOf(escrow.agreementOf(id).termsId).monitor == address(0)) return "";
        uint32 session = escrow.minutesAccountOf(id).sessions + 1;
        _refuse(id, _forged(id, session, from, to, availability, seed / 10 % 5), availability);
        return signReport(escrow, MONITOR_KEY, id, session, from, to, availability, EVIDENCE);
    }

    /// A report a settlement at `availability` must refuse: none, one signed by a stranger, one of another
    /// figure, evidence or conference.
    function _forged(uint256 id, uint32 session, uint256 from, uint256 to, uint16 availability, uint256 how)
        internal
        returns (bytes memory)
    {
        uint16 other = availability == 10_000 ? 0 : availability + 1;
        if (how == 0) return "";
        if (how == 1) return signReport(escrow, STRANGER_KEY, id, session, from, to, availability, EVIDENCE);
        if (how == 2) return signReport(escrow, MONITOR_KEY, id, session, from, to, other, EVIDENCE);
        if (how == 3) return signReport(escrow, MONITOR_KEY, id, session, from, to, availability, bytes32(0));
        return signReport(escrow, MONITOR_KEY, id, session + 1, from, to, availability, EVIDENCE);
    }

    /// Submits a forged report and checks it is refused and changes nothing.
    function _refuse(uint256 id, bytes memory forged, uint16 availability) internal {
        Pre memory p = _pre(id);
        bytes memory data = abi.encodeCall(escrow.settle, (id, availability, EVIDENCE, forged));
        (bool ok,) = _rawCall(operator, address(escrow), data, 0);
        if (ok) _violate(CHARGE, "settle accepted a report that is not the monitor's for this conference");
        _post(p, 0, 0);
    }

    function stopAndSettle(uint256 idSeed, uint256 availabilitySeed, uint256 waitSeed, uint256 stopSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Active), ANY);
        if (!found) return _fallback(idSeed);
        _warp(waitSeed % 2400);
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        // A signed stop anywhere from before the start to beyond the end.
        uint40 stoppedAt = uint40(uint256(ag.startedAt) - 30 + stopSeed % (uint256(ag.duration) + 3600));
        uint40 deadline = uint40(time + 1 + stopSeed % 600);
        uint256 endedAt = _clampedEnd(ag, stoppedAt);
        bytes memory sig = _stopSignature(id, stoppedAt, deadline);
        Pre memory p = _pre(id);
        if (availabilitySeed % 4 == 0) {
            // Anyone holding the signature submits it; the settlement is the operator's, later.
            _call(address(0xbeef), abi.encodeCall(escrow.stopBySignature, (id, stoppedAt, deadline, sig)), "stopBySig");
            if (escrow.agreementOf(id).endedAt != endedAt) _violate(CHARGE, "stopBySignature: end not clamped");
            return _post(p, 0, 0);
        }
        uint16 availability = _availability(availabilitySeed);
        uint256 charge = _chargeOf(_g[id], endedAt - ag.startedAt, availability);
        bytes memory report = "";
        if (escrow.termsOf(ag.termsId).monitor != address(0)) {
            uint32 session = escrow.minutesAccountOf(id).sessions + 1;
            report = signReport(escrow, MONITOR_KEY, id, session, ag.startedAt, endedAt, availability, EVIDENCE);
        }
        vm.recordLogs();
        _operatorCall(
            abi.encodeCall(escrow.stopAndSettle, (id, availability, EVIDENCE, report, stoppedAt, deadline, sig)),
            "stopAndSettle",
            stopSeed >> 16
        );
        // Ended and settled at once, the agreement keeps its end in its AgreementEnded event only.
        if (_loggedEnd(id) != endedAt) _violate(CHARGE, "stopAndSettle: end not clamped as specified");
        _post(p, charge, availability);
    }

    /// The end the last recorded AgreementEnded event gave agreement `id` (type(uint256).max if none).
    function _loggedEnd(uint256 id) internal returns (uint256) {
        (bool found, uint256 endedAt) = endedAtLogged(vm.getRecordedLogs(), id);
        return found ? endedAt : type(uint256).max;
    }

    /// The end stopAndSettle must record: the signed time, no later than now nor the end time, no earlier than
    /// the start.
    function _clampedEnd(IConferenceEscrow.Agreement memory ag, uint256 stoppedAt) internal view returns (uint256) {
        uint256 endsAt = uint256(ag.startedAt) + ag.duration;
        uint256 latest = time < endsAt ? time : endsAt;
        uint256 endedAt = stoppedAt > latest ? latest : stoppedAt;
        return endedAt < ag.startedAt ? ag.startedAt : endedAt;
    }

    /// The customer's EIP-712 Stop signature (for the contract customer: its owner's, checked by ERC-1271).
    function _stopSignature(uint256 id, uint40 stoppedAt, uint40 deadline) internal returns (bytes memory) {
        uint32 session = escrow.minutesAccountOf(id).sessions + 1;
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(keys[_g[id].cust], escrow.stopDigest(id, session, stoppedAt, deadline));
        return abi.encodePacked(r, s, v);
    }

    // =============================================================================================
    // Anyone
    // =============================================================================================

    function end(uint256 idSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Active), ANY);
        if (!found) return _fallback(idSeed);
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        uint256 endsAt = uint256(ag.startedAt) + ag.duration;
        if (time < endsAt) _warpTo(endsAt);
        Pre memory p = _pre(id);
        _call(address(0xbeef), abi.encodeCall(escrow.end, (id)), "end");
        _post(p, 0, 0);
    }

    function reclaim(uint256 idSeed) external act {
        (bool found, uint256 id) = _pick(idSeed, _bit(IConferenceEscrow.Status.Requested), ANY);
        if (!found) return _fallback(idSeed);
        _reclaimId(id);
    }

    function _reclaimId(uint256 id) internal {
        uint256 deadline = uint256(escrow.agreementOf(id).startedAt) + ACTIVATION_WINDOW;
        if (time <= deadline) _warpTo(deadline + 1);
        Pre memory p = _pre(id);
        _call(address(0xbeef), abi.encodeCall(escrow.reclaim, (id)), "reclaim");
        _post(p, 0, 0);
    }

    function settleOverdue(uint256 idSeed) external act {
        (bool found, uint256 id) = _pickSettleable(idSeed);
        if (!found) return _fallback(idSeed);
        Ghost storage a = _g[id];
        uint256 opensAt = a.last == IConferenceEscrow.Status.Ended ? escrow.agreementOf(id).endedAt : a.to;
        if (time <= opensAt + SETTLEMENT_WINDOW) _warpTo(opensAt + SETTLEMENT_WINDOW + 1);
        // No report from a monitor is no availability; without a monitor, the operator's window passed.
        uint16 availability = escrow.termsOf(escrow.agreementOf(id).termsId).monitor == address(0) ? 10_000 : 0;
        uint256 charge = _expectedSettlement(id, availability);
        Pre memory p = _pre(id);
        _call(address(0xbeef), abi.encodeCall(escrow.settleOverdue, (id)), "settleOverdue");
        _post(p, charge, availability);
    }

    function withdraw(uint256 accountSeed, bool inToken) external act {
        // The first account (from a random start) with a credit it can take, in either token.
        uint8 tokenId;
        address account;
        uint256 credit;
        for (uint256 k; k < 8 && credit == 0; ++k) {
            uint256 n = (accountSeed % 4 + k) % 4;
            tokenId = (inToken ? 1 : 0) == (k / 4) % 2 ? 0 : usdId;
            account = n == 3 ? admin : customers[n];
            credit = escrow.creditOf(account, tokenId);
            if (account == address(wallet) && (tokenId == 0 ? !wallet.accept() : usd.blocked(address(wallet)))) {
                credit = 0;
            }
        }
        if (credit == 0) return _fallback(accountSeed);
        uint256 before = _balance(tokenId, account);
        if (account == address(wallet)) {
            _walletCall(abi.encodeCall(escrow.withdraw, (tokenId)), 0, "withdraw");
        } else {
            _call(account, abi.encodeCall(escrow.withdraw, (tokenId)), "withdraw");
        }
        if (_balance(tokenId, account) - before != credit) _violate(CHARGE, "withdraw: paid other than the credit");
        if (account == admin) ownerWithdrawn[tokenId] += credit;
    }

    function withdrawEarnings(uint256 providerSeed, bool inToken) external act {
        uint8 tokenId;
        uint256 i;
        uint256 amount;
        for (uint256 k; k < 6 && amount == 0; ++k) {
            i = (providerSeed % 3 + k) % 3;
            tokenId = (inToken ? 1 : 0) == (k / 3) % 2 ? 0 : usdId;
            amount = escrow.earningsOf(providerIds[i], tokenId);
        }
        if (amount == 0) return _fallback(providerSeed);
        uint256 before = _balance(tokenId, payouts[i]);
        // The provider decides when: its account or its payout address calls.
        address caller = (providerSeed >> 8) % 2 == 0 ? _accountOf(providerIds[i]) : payouts[i];
        _call(caller, abi.encodeCall(escrow.withdrawEarnings, (providerIds[i], tokenId)), "withdrawEarnings");
        if (_balance(tokenId, payouts[i]) - before != amount) {
            _violate(CHARGE, "withdrawEarnings: paid other than earned");
        }
        earningsWithdrawn[tokenId] += amount;
    }

    /// The contract customer starts or stops refusing ETH, or is blocked / unblocked by the stablecoin.
    function toggleRefusal(uint256 seed) external act {
        if (seed % 2 == 0) wallet.setAccept(!wallet.accept());
        else usd.setBlocked(address(wallet), !usd.blocked(address(wallet)));
        ++done["toggleRefusal"];
    }

    function warp(uint256 seconds_) external act {
        // Mostly minutes; sometimes past an activation window; rarely past a settlement window.
        uint256 r = seconds_ % 16;
        if (r < 12) _warp(1 + seconds_ % 1800);
        else if (r < 15) _warp(1 + seconds_ % 3 hours);
        else _warp(1 + seconds_ % 2 days);
        ++done["warp"];
    }

    // =============================================================================================
    // Customer accounts and signed orders
    // =============================================================================================

    function deposit(uint256 custSeed, bool inToken, uint256 amountSeed) external act {
        uint8 tokenId = inToken ? usdId : 0;
        // forge-lint: disable-next-line(unsafe-typecast)
        _depositFor(uint8(custSeed % 3), tokenId, 1 + amountSeed % (tokenId == 0 ? 1e18 : 1e10));
    }

    /// Pays `amount` into customer `cust`'s account; checks the escrow received it and the free balance rose.
    function _depositFor(uint8 cust, uint8 tokenId, uint256 amount) internal {
        address who = customers[cust];
        uint256 escrowBefore = _balance(tokenId, address(escrow));
        uint256 freeBefore = escrow.accountOf(who, tokenId).free;
        bytes memory data = abi.encodeCall(escrow.depositToAccount, (tokenId, amount));
        uint256 value = tokenId == 0 ? amount : 0;
        if (cust == 2) {
            _walletCall(data, value, "deposit");
        } else {
            (bool ok, bytes memory ret) = _rawCall(who, address(escrow), data, value);
            if (!ok) return _unexpected("deposit", ret);
            ++done["deposit"];
        }
        if (_balance(tokenId, address(escrow)) - escrowBefore != amount) {
            _violate(CHARGE, "deposit: escrow received other than the amount");
        }
        if (escrow.accountOf(who, tokenId).free - freeBefore != amount) {
            _violate(CHARGE, "deposit: free rose otherwise");
        }
        accountDeposited[cust][tokenId] += amount;
    }

    /// Asks to withdraw part of the free balance, all of it, or more than there is.
    function requestWithdrawal(uint256 custSeed, bool inToken, uint256 amountSeed) external act {
        // forge-lint: disable-next-line(unsafe-typecast)
        uint8 cust = uint8(custSeed % 3);
        uint8 tokenId = inToken ? usdId : 0;
        uint256 free = escrow.accountOf(customers[cust], tokenId).free;
        if (free == 0) return _fallback(amountSeed);
        uint256 amount = amountSeed % 4 == 0 ? type(uint128).max : 1 + amountSeed % free;
        bytes memory data = abi.encodeCall(escrow.requestWithdrawal, (tokenId, amount));
        if (cust == 2) _walletCall(data, 0, "requestWithdrawal");
        else _call(customers[cust], data, "requestWithdrawal");
        IConferenceEscrow.Account memory account = escrow.accountOf(customers[cust], tokenId);
        if (account.withdrawal != amount || account.withdrawalAt != time) _violate(CHARGE, "request not recorded");
    }

    /// Completes a pending request (waiting out ACTIVATION_WINDOW first): pays min(requested, free).
    function completeWithdrawal(uint256 seed) external act {
        for (uint256 k; k < 6; ++k) {
            // forge-lint: disable-next-line(unsafe-typecast)
            uint8 cust = uint8((seed % 6 + k) % 6 / 2);
            uint8 tokenId = (seed % 6 + k) % 2 == 0 ? 0 : usdId;
            address who = customers[cust];
            IConferenceEscrow.Account memory account = escrow.accountOf(who, tokenId);
            if (account.withdrawal == 0 || account.free == 0) continue;
            if (who == address(wallet) && (tokenId == 0 ? !wallet.accept() : usd.blocked(who))) continue;
            _warpTo(uint256(account.withdrawalAt) + ACTIVATION_WINDOW);
            account = escrow.accountOf(who, tokenId); // nothing moves by time alone
            uint256 expected = account.withdrawal < account.free ? account.withdrawal : account.free;
            uint256 before = _balance(tokenId, who);
            bytes memory data = abi.encodeCall(escrow.completeWithdrawal, (tokenId));
            if (cust == 2) _walletCall(data, 0, "completeWithdrawal");
            else _call(who, data, "completeWithdrawal");
            uint256 paid = _balance(tokenId, who) - before;
            if (paid != expected) _violate(CHARGE, "withdrawal: paid other than min(requested, free)");
            if (escrow.accountOf(who, tokenId).free != account.free - paid) _violate(CHARGE, "withdrawal: free");
            if (escrow.accountOf(who, tokenId).locked != account.locked) _violate(CHARGE, "withdrawal: locked moved");
            accountWithdrawn[cust][tokenId] += paid;
            return;
        }
        _fallback(seed);
    }

    /// The operator opens a customer's signed order (topping the account up first when its free balance is
    /// short), alone or in a batch between calls that must fail.
    function openOrder(uint256 custSeed, uint256 offerSeed, uint256 regionSeed, bool gdpr, uint256 costSeed)
        external
        act
    {
        if (ids.length >= MAX_AGREEMENTS) return _fallback(costSeed);
        (bool found, uint32 termsId) = _pickTerms(offerSeed, 15);
        if (!found) return;
        uint256 id = escrow.agreementCount() + 1;
        // forge-lint: disable-next-line(unsafe-typecast)
        IConferenceEscrow.Order memory order = _newOrder(id, uint8(custSeed % 3), termsId, regionSeed, gdpr, costSeed);
        Ghost storage a = _g[id];
        uint256 free = escrow.accountOf(customers[a.cust], a.tokenId).free;
        if (free < a.deposit) _depositFor(a.cust, a.tokenId, a.deposit - free + costSeed % 1000);
        _sendOrder(id, order, costSeed >> 128);
    }

    /// Signs `order` as its customer (the contract customer through ERC-1271), has the operator open it, and
    /// checks the lock, the agreement and the nonce.
    function _sendOrder(uint256 id, IConferenceEscrow.Order memory order, uint256 seed) internal {
        Ghost storage a = _g[id];
        address who = customers[a.cust];
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[a.cust], escrow.orderDigest(order));
        bytes memory data = abi.encodeCall(escrow.openOrder, (order, who, abi.encodePacked(r, s, v)));
        IConferenceEscrow.Account memory before = escrow.accountOf(who, a.tokenId);
        uint256 escrowBefore = _balance(a.tokenId, address(escrow));
        vm.recordLogs();
        if (!_operatorCall(data, "openOrder", seed)) return;
        _countEvents();
        IConferenceEscrow.Account memory afterwards = escrow.accountOf(who, a.tokenId);
        if (before.free - afterwards.free != a.deposit || afterwards.locked - before.locked != a.deposit) {
            _violate(CHARGE, "openOrder: the account did not lock the order's deposit");
        }
        if (_balance(a.tokenId, address(escrow)) != escrowBefore) _violate(CHARGE, "openOrder moved money");
        if (escrow.depositOf(id) != a.deposit) _violate(CHARGE, "depositOf differs from the order's lock");
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        if (ag.price != a.price || ag.surchargeBps != a.bps || ag.customer != who) {
            _violate(CHARGE, "order agreement differs from the order");
        }
        if (ag.status != IConferenceEscrow.Status.Requested) _violate(TRANSITION, "an order opens Requested");
        if (!escrow.orderNonceUsed(who, order.nonce)) _violate(EVENTS, "filled order nonce not used");
        a.last = IConferenceEscrow.Status.Requested;
        ids.push(id);
        filledNonces.push(order.nonce);
        nonceCustomer[order.nonce] = who;
        _lastOrderCall = data;
    }

    /// The ghost of the agreement an order of `termsId` opens, and the order: its lock computed by the formulas
    /// (the deposit of the terms' longest conference), its limit at or above it.
    function _newOrder(uint256 id, uint8 cust, uint32 termsId, uint256 regionSeed, bool gdpr, uint256 costSeed)
        internal
        returns (IConferenceEscrow.Order memory order)
    {
        IConferenceEscrow.Terms memory t = escrow.termsOf(termsId);
        Ghost storage a = _g[id];
        a.cust = cust;
        a.tokenId = t.tokenId;
        a.model = t.model;
        a.termsId = termsId;
        a.termsPrice = t.price;
        a.termsHash = termsHash(termsId);
        a.fromAccount = true;
        if (signedTermsHash[termsId] == bytes32(0)) {
            signedTermsHash[termsId] = a.termsHash;
            signedTerms.push(termsId);
        }
        for (uint256 i; i < t.shares.length; ++i) {
            for (uint256 k; k < 3; ++k) {
                if (t.shares[i].providerId == providerIds[k]) a.comps[k] = t.shares[i].component;
            }
        }
        order.termsId = termsId;
        order.allowedRegions = _allowedRegions(t.regions, regionSeed);
        uint32 regions = order.allowedRegions == 0 ? t.regions : order.allowedRegions & t.regions;
        order.gdpr = gdpr && t.gdpr;
        uint256 bps = (order.gdpr ? uint256(t.gdprSurchargeBps) : 0) + (regions != t.regions ? t.regionSurchargeBps : 0);
        a.price = t.price;
        // forge-lint: disable-next-line(unsafe-typecast)
        a.bps = uint24(bps);
        uint256 scaled = uint256(t.price) * t.maxDuration * (10_000 + bps);
        if (t.model == IOfferBook.Model.FixedPrice) {
            a.deposit = uint256(t.price) * (10_000 + bps) / 10_000;
        } else if (t.model == IOfferBook.Model.TimeLimited) {
            a.deposit = scaled / 600_000;
        } else {
            if (t.model == IOfferBook.Model.FlexiblePeriod) {
                a.minimum = uint256(t.minimumCharge) * (10_000 + bps) / 10_000;
            }
            a.deposit = a.minimum + scaled / 10_000;
        }
        order.maxCost = costSeed % 3 == 0 ? a.deposit : a.deposit + costSeed % (a.deposit + 1);
        // Unique nonces: small ones (word 0, 1, ...) and random ones across the whole range.
        order.nonce = costSeed % 2 == 0 ? ++_nextNonce : uint256(keccak256(abi.encode("nonce", ++_nextNonce)));
        // forge-lint: disable-next-line(unsafe-typecast)
        order.deadline = uint40(time + 1 + costSeed % 1 hours);
        a.maxCost = order.maxCost;
        a.nonce = order.nonce;
    }

    /// The operator's call: alone (two times in three), or in a batch between two calls that must fail (a
    /// replayed order, an agreement already over, an expired order, an unknown agreement); each must fail
    /// alone and the call in the middle take effect. Returns whether it did.
    function _operatorCall(bytes memory data, string memory what, uint256 seed) internal returns (bool) {
        if (seed % 3 != 0) {
            (bool ok, bytes memory ret) = _rawCall(operator, address(escrow), data, 0);
            if (!ok) {
                _unexpected(what, ret);
                return false;
            }
            ++done[what];
            return true;
        }
        bytes[] memory calls = new bytes[](3);
        calls[0] = _badItem(seed >> 8);
        calls[1] = data;
        calls[2] = _badItem(seed >> 16);
        (bool sent, bytes memory out) = _rawCall(operator, address(escrow), abi.encodeCall(escrow.batch, (calls)), 0);
        if (!sent) {
            _unexpected("batch", out);
            return false;
        }
        bool[] memory succeeded = abi.decode(out, (bool[]));
        if (succeeded[0] || succeeded[2]) _violate(REVERT, "batch: a call that must fail succeeded");
        if (!succeeded[1]) {
            _violate(REVERT, string.concat(what, " failed in a batch although allowed"));
            return false;
        }
        ++done[what];
        ++done["batch"];
        return true;
    }

    /// A call that must fail, whatever else the batch does.
    function _badItem(uint256 seed) internal returns (bytes memory) {
        uint256 how = seed % 4;
        if (how == 0 && _lastOrderCall.length != 0) return _lastOrderCall; // its nonce is used
        if (how == 1) {
            (bool found, uint256 id) =
                _pick(seed >> 8, _bit(IConferenceEscrow.Status.Settled) | _bit(IConferenceEscrow.Status.Refunded), ANY);
            if (found) return abi.encodeCall(escrow.settle, (id, 10_000, EVIDENCE, ""));
        }
        if (how == 2) {
            IConferenceEscrow.Order memory stale;
            stale.termsId = 1;
            stale.maxCost = type(uint256).max;
            stale.nonce = type(uint256).max;
            // forge-lint: disable-next-line(unsafe-typecast)
            stale.deadline = uint40(time - 1);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[0], escrow.orderDigest(stale));
            return abi.encodeCall(escrow.openOrder, (stale, customers[0], abi.encodePacked(r, s, v)));
        }
        return abi.encodeCall(escrow.activate, (type(uint64).max, 0));
    }

    /// What customer `who` has of token `tokenId` outside its agreements: its balance, its credit, and its
    /// account's free balance (where an account agreement's refund goes).
    function _holdings(address who, uint8 tokenId) internal view returns (uint256) {
        return _balance(tokenId, who) + escrow.creditOf(who, tokenId) + escrow.accountOf(who, tokenId).free;
    }

    // =============================================================================================
    // Offer book: providers vote new terms
    // =============================================================================================

    function propose(uint256 offerSeed, uint256 proposerSeed, uint256 maskSeed, uint256 c0, uint256 c1, uint256 c2)
        external
        act
    {
        // One live proposal at a time: while the newest can still pass, vote on it instead.
        if (proposals.length != 0 && _live(proposals[proposals.length - 1]) && _vote(0, proposerSeed, c0)) return;
        uint32 offerId = offerIds[offerSeed % offerIds.length];
        IConferenceEscrow.Terms memory t = escrow.termsOf(book.offerOf(offerId).termsId);
        uint32 proposerId = t.shares[proposerSeed % t.shares.length].providerId;
        (IOfferBook.Share[] memory shares, uint88 margin, uint88 minimum) = _newTerms(t, maskSeed, [c0, c1, c2]);
        (bool ok, bytes memory ret) = _rawCall(
            _accountOf(proposerId), address(book), abi.encodeCall(book.propose, (offerId, shares, margin, minimum)), 0
        );
        if (!ok) return _unexpected("propose", ret);
        proposals.push(abi.decode(ret, (uint256)));
        ++done["propose"];
    }

    /// Any non-empty subset of the three providers, with components and margin of the same order as today's.
    /// Every other proposal pays nobody less (members' components only rise, the margin stays and a minimum
    /// charge rises with the price), so that a majority alone can pass it; the rest may need the consent of
    /// the members (or the owner) whose pay they lower.
    function _newTerms(IConferenceEscrow.Terms memory t, uint256 maskSeed, uint256[3] memory seeds)
        internal
        view
        returns (IOfferBook.Share[] memory shares, uint88 margin, uint88 minimum)
    {
        uint256 largest = t.margin;
        for (uint256 i; i < t.shares.length; ++i) {
            if (t.shares[i].component > largest) largest = t.shares[i].component;
        }
        bool lowersNobody = (maskSeed >> 8) % 2 == 0;
        uint256 mask = 1 + maskSeed % 7;
        shares = new IOfferBook.Share[]((mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1));
        uint256 k;
        uint256 price;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) == 0) continue;
            uint256 component = 1 + seeds[i] % (2 * largest);
            if (lowersNobody) component += _componentOf(t.shares, providerIds[i]);
            shares[k++] = IOfferBook.Share({providerId: providerIds[i], component: uint88(component)});
            price += component;
        }
        margin = lowersNobody ? t.margin : uint88(seeds[0] % (2 * largest + 1));
        price += margin;
        if (t.model == IOfferBook.Model.FlexiblePeriod) {
            minimum = uint88(1 + seeds[1] % (2 * uint256(t.minimumCharge)));
            // At least in proportion to the price: nobody's part floor(minimum · c / price) shrinks.
            if (lowersNobody) minimum += uint88((uint256(t.minimumCharge) * price + t.price - 1) / t.price);
        }
    }

    function _componentOf(IOfferBook.Share[] memory shares, uint32 providerId) internal pure returns (uint256) {
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].providerId == providerId) return shares[i].component;
        }
        return 0;
    }

    function vote(uint256 proposalSeed, uint256 voterSeed, uint256 supportSeed) external act {
        if (!_vote(proposalSeed, voterSeed, supportSeed)) _fallback(supportSeed);
    }

    /// Whether a proposal can still gather votes: not executed, before its deadline, its base terms current.
    function _live(uint256 proposalId) internal view returns (bool) {
        IOfferBook.Proposal memory prop = book.proposalOf(proposalId);
        return !prop.executed && time <= prop.deadline && book.offerOf(prop.offerId).termsId == prop.baseTermsId;
    }

    function _vote(uint256 proposalSeed, uint256 voterSeed, uint256 supportSeed) internal returns (bool voted) {
        uint256 count = proposals.length;
        for (uint256 j; j < count; ++j) {
            // The newest proposals first (older ones are more likely stale), from a random start among the last three.
            uint256 proposalId = proposals[count - 1 - (proposalSeed % (count < 3 ? count : 3) + j) % count];
            IOfferBook.Proposal memory prop = book.proposalOf(proposalId);
            if (prop.executed || time > prop.deadline) continue;
            if (book.offerOf(prop.offerId).termsId != prop.baseTermsId) continue; // stale
            // A voter: a current member or a provider the proposal would add, or the owner (ballot 0), who has
            // not voted.
            IConferenceEscrow.Terms memory t = escrow.termsOf(prop.baseTermsId);
            for (uint256 k; k < 4; ++k) {
                uint256 n = (voterSeed % 4 + k) % 4;
                uint32 pid = n == 3 ? 0 : providerIds[n];
                if (_voted[proposalId][pid]) continue;
                if (n != 3 && !_inShares(t.shares, pid) && !_inShares(prop.shares, pid)) continue;
                // The owner votes when its consent may be needed: the margin or the minimum charge changes.
                if (n == 3 && prop.margin == t.margin && prop.minimumCharge == t.minimumCharge) continue;
                bool support = supportSeed % 6 != 0;
                address voter = n == 3 ? admin : _accountOf(pid);
                (bool ok, bytes memory ret) =
                    _rawCall(voter, address(book), abi.encodeCall(book.vote, (proposalId, support)), 0);
                if (!ok) {
                    _unexpected("vote", ret);
                    return false;
                }
                _voted[proposalId][pid] = true;
                ++done["vote"];
                return true;
            }
        }
    }

    function execute(uint256 proposalSeed) external act {
        uint256 count = proposals.length;
        for (uint256 j; j < count; ++j) {
            uint256 proposalId = proposals[(proposalSeed % count + j) % count];
            if (!book.hasPassed(proposalId)) continue;
            (bool ok, bytes memory ret) =
                _rawCall(address(0xbeef), address(book), abi.encodeCall(book.execute, (proposalId)), 0);
            if (!ok) return _unexpected("execute", ret);
            ++done["execute"];
            return;
        }
        _vote(0, proposalSeed, proposalSeed >> 8); // nothing passed yet: a vote instead
    }

    // =============================================================================================
    // Views for the invariants
    // =============================================================================================

    function agreementCount() external view returns (uint256) {
        return ids.length;
    }

    function ghost(uint256 id) external view returns (Ghost memory) {
        return _g[id];
    }

    /// The sum of held(id) over the agreements in token `tokenId`.
    function heldSum(uint8 tokenId) external view returns (uint256 sum) {
        uint256 n = ids.length;
        for (uint256 i; i < n; ++i) {
            Ghost storage a = _g[ids[i]];
            if (a.tokenId == tokenId) sum += a.deposit - a.charged - a.refunded;
        }
    }

    /// For customer `cust`'s account agreements in token `tokenId`: what they were charged (measured), and what
    /// the account still holds locked for them (deposit − charged − refunded).
    function accountAgreements(uint8 cust, uint8 tokenId) external view returns (uint256 charged, uint256 held_) {
        uint256 n = ids.length;
        for (uint256 i; i < n; ++i) {
            Ghost storage a = _g[ids[i]];
            if (!a.fromAccount || a.cust != cust || a.tokenId != tokenId) continue;
            charged += a.charged;
            held_ += a.deposit - a.charged - a.refunded;
        }
    }

    function filledCount() external view returns (uint256) {
        return filledNonces.length;
    }

    /// The sum of the measured charges of the agreements in token `tokenId`.
    function chargedSum(uint8 tokenId) external view returns (uint256 sum) {
        uint256 n = ids.length;
        for (uint256 i; i < n; ++i) {
            Ghost storage a = _g[ids[i]];
            if (a.tokenId == tokenId) sum += a.charged;
        }
    }

    /// The terms versions agreements were signed under, each with its hash when first signed.
    function signedTermsCount() external view returns (uint256) {
        return signedTerms.length;
    }

    /// What the escrow still holds for an agreement: deposit − charged − refunded (measured).
    function held(uint256 id) public view returns (uint256) {
        Ghost storage a = _g[id];
        return a.deposit - a.charged - a.refunded;
    }

    function termsHash(uint32 termsId) public view returns (bytes32) {
        IConferenceEscrow.Terms memory t = escrow.termsOf(termsId);
        return keccak256(
            abi.encode(
                t.price,
                t.maxDuration,
                t.offerId,
                t.regions,
                t.gdprSurchargeBps,
                t.regionSurchargeBps,
                t.model,
                t.tokenId,
                t.gdpr,
                t.owner,
                t.margin,
                t.minimumCharge,
                t.shares
            )
        );
    }

    /// Whether the lifecycle diagram of IConferenceEscrow allows `from` → `to` in one call for `model`.
    function allowed(IOfferBook.Model model, IConferenceEscrow.Status from, IConferenceEscrow.Status to)
        public
        pure
        returns (bool)
    {
        if (from == to) return true;
        bool minutes_ = model == IOfferBook.Model.TimeLimited;
        bool flexible = model == IOfferBook.Model.FlexiblePeriod;
        if (from == IConferenceEscrow.Status.None) {
            return to == (minutes_ || flexible ? IConferenceEscrow.Status.Idle : IConferenceEscrow.Status.Requested);
        }
        if (from == IConferenceEscrow.Status.Idle) {
            // start; close (TimeLimited); settle after the window (FlexiblePeriod never started)
            return (minutes_ || flexible)
                && (to == IConferenceEscrow.Status.Requested || to == IConferenceEscrow.Status.Settled);
        }
        if (from == IConferenceEscrow.Status.Requested) {
            // activate; stop / decline / reclaim: Refunded, or Idle for a TimeLimited session and for a
            // FlexiblePeriod start its customer called off or that timed out unowed (the reservation stays);
            // settle: a FlexiblePeriod start that lapsed with its window
            if (to == IConferenceEscrow.Status.Active) return true;
            if (minutes_) return to == IConferenceEscrow.Status.Idle;
            if (flexible) {
                return to == IConferenceEscrow.Status.Idle || to == IConferenceEscrow.Status.Refunded
                    || to == IConferenceEscrow.Status.Settled;
            }
            return to == IConferenceEscrow.Status.Refunded;
        }
        if (from == IConferenceEscrow.Status.Active) {
            // stop / end; stopAndSettle goes on through Ended at once
            if (to == IConferenceEscrow.Status.Ended) return true;
            return minutes_ ? to == IConferenceEscrow.Status.Idle : to == IConferenceEscrow.Status.Settled;
        }
        if (from == IConferenceEscrow.Status.Ended) {
            return minutes_ ? to == IConferenceEscrow.Status.Idle : to == IConferenceEscrow.Status.Settled;
        }
        return false; // Settled and Refunded are final
    }

    // =============================================================================================
    // Internals
    // =============================================================================================

    /// Balances before an agreement action, and log recording.
    struct Pre {
        uint256 id;
        IConferenceEscrow.Status status;
        uint256 customer; // balance + credit
        uint256[3] earnings;
        uint256 owner;
        uint256 escrow;
    }

    function _pre(uint256 id) internal returns (Pre memory p) {
        Ghost storage a = _g[id];
        p.id = id;
        p.status = a.last;
        address c = customers[a.cust];
        p.customer = _holdings(c, a.tokenId);
        for (uint256 i; i < 3; ++i) {
            p.earnings[i] = escrow.earningsOf(providerIds[i], a.tokenId);
        }
        p.owner = escrow.creditOf(admin, a.tokenId);
        p.escrow = _balance(a.tokenId, address(escrow));
        vm.recordLogs();
    }

    /// After an agreement action: checks the transition, measures the charge (what providers and the owner
    /// were credited) and the refund (what reached the customer), checks them against the formulas and the
    /// split against the signed terms, counts the events.
    function _post(Pre memory p, uint256 expectedCharge, uint16 availability) internal {
        Ghost storage a = _g[p.id];
        IConferenceEscrow.Status status = escrow.agreementOf(p.id).status;
        if (!allowed(a.fromAccount ? IOfferBook.Model.DynamicPrice : a.model, p.status, status)) {
            _violate(
                TRANSITION,
                string.concat(
                    "agreement ",
                    str(p.id),
                    " (model ",
                    str(uint256(a.model)),
                    "): status ",
                    str(uint256(p.status)),
                    " -> ",
                    str(uint256(status)),
                    " is not in the lifecycle diagram"
                )
            );
        }
        uint256 charge = _measureCharge(p, a, expectedCharge);
        uint256 refund = _delta(_holdings(customers[a.cust], a.tokenId), p.customer, "customer");
        if (charge != expectedCharge) {
            _violate(
                CHARGE,
                string.concat("agreement ", str(p.id), ": charged ", str(charge), ", formula ", str(expectedCharge))
            );
        }
        if (availability < 7500 && charge != 0) _violate(CHARGE, "charged below 75% availability");
        _checkRefund(p, a, status, charge, refund);
        a.charged += charge;
        a.refunded += refund;
        expectedCharged[a.tokenId] += expectedCharge;
        if (a.charged + a.refunded > a.deposit) _violate(CHARGE, "charged + refunded above the deposit");
        _countEvents();
        a.last = status;
    }

    /// The measured charge: what providers and the owner were credited. Each provider's part must be
    /// floor(charge·component/price) of the terms the agreement signed; the owner gets the rest.
    function _measureCharge(Pre memory p, Ghost storage a, uint256 expectedCharge) internal returns (uint256 charge) {
        uint256 parts;
        for (uint256 i; i < 3; ++i) {
            uint256 part = _delta(escrow.earningsOf(providerIds[i], a.tokenId), p.earnings[i], "earnings");
            if (part != expectedCharge * a.comps[i] / a.termsPrice) {
                _violate(
                    CHARGE,
                    string.concat(
                        "agreement ", str(p.id), ": provider part differs from floor(charge*c/P) of its signed terms"
                    )
                );
            }
            parts += part;
        }
        uint256 ownerPart = _delta(escrow.creditOf(admin, a.tokenId), p.owner, "owner credit");
        if (expectedCharge >= parts && ownerPart != expectedCharge - parts) {
            _violate(CHARGE, "owner's part is not the rest of the charge");
        }
        charge = parts + ownerPart;
    }

    function _checkRefund(
        Pre memory p,
        Ghost storage a,
        IConferenceEscrow.Status status,
        uint256 charge,
        uint256 refund
    ) internal {
        uint256 expected;
        if (status == IConferenceEscrow.Status.Refunded) {
            expected = a.deposit; // called off before it started: everything back
        } else if (status == IConferenceEscrow.Status.Settled && p.status != IConferenceEscrow.Status.Settled) {
            // Settled: the deposit less everything charged (TimeLimited close: less every session).
            expected = a.deposit - a.charged - charge;
        }
        if (refund != expected) {
            _violate(
                CHARGE, string.concat("agreement ", str(p.id), ": refunded ", str(refund), ", expected ", str(expected))
            );
        }
    }

    /// Counts the settlement-related events of every agreement emitted by the escrow during the call.
    function _countEvents() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow) || logs[i].topics.length < 2) continue;
            bytes32 sig = logs[i].topics[0];
            if (sig == ORDER_FILLED_EVENT) {
                address who = address(uint160(uint256(logs[i].topics[2])));
                uint256 nonce = abi.decode(logs[i].data, (uint256));
                if (ordersFilled[who][nonce]++ != 0) _violate(EVENTS, "an order nonce was filled twice");
                continue;
            }
            Ghost storage a = _g[uint256(logs[i].topics[1])];
            if (sig == SETTLED_EVENT) ++a.settleEvents;
            else if (sig == ENDED_EVENT) ++a.endEvents;
            else if (sig == CLOSED_EVENT) ++a.closeEvents;
            else if (sig == CANCELLED_EVENT) ++a.cancelEvents;
        }
    }

    struct SignCall {
        uint256 id;
        uint32 termsId;
        uint32 allowedRegions;
        bool gdpr;
        uint256 quantity;
        bytes data;
    }

    function _sign(
        uint256 custSeed,
        uint256 offerSeed,
        uint256 regionSeed,
        bool gdpr,
        uint256 minuteSeed,
        uint256 windowSeed,
        uint256 modelMask
    ) internal {
        if (ids.length >= MAX_AGREEMENTS) return;
        SignCall memory c;
        bool found;
        (found, c.termsId) = _pickTerms(offerSeed, modelMask);
        if (!found) return;
        IConferenceEscrow.Terms memory t = escrow.termsOf(c.termsId);
        c.id = escrow.agreementCount() + 1;
        Ghost storage a = _g[c.id];
        a.cust = uint8(custSeed % 3);
        a.tokenId = t.tokenId;
        a.model = t.model;
        a.termsId = c.termsId;
        a.termsPrice = t.price;
        a.termsHash = termsHash(c.termsId);
        if (signedTermsHash[c.termsId] == bytes32(0)) {
            signedTermsHash[c.termsId] = a.termsHash;
            signedTerms.push(c.termsId);
        }
        for (uint256 i; i < t.shares.length; ++i) {
            for (uint256 k; k < 3; ++k) {
                if (t.shares[i].providerId == providerIds[k]) a.comps[k] = t.shares[i].component;
            }
        }
        // Constraints: none, the same regions, the EU only (narrowed), or random bits within the served ones.
        c.allowedRegions = _allowedRegions(t.regions, regionSeed);
        uint32 regions = c.allowedRegions == 0 ? t.regions : c.allowedRegions & t.regions;
        c.gdpr = gdpr && t.gdpr;
        uint256 bps = (c.gdpr ? uint256(t.gdprSurchargeBps) : 0) + (regions != t.regions ? t.regionSurchargeBps : 0);
        a.price = t.price;
        a.bps = uint24(bps);
        if (t.model == IOfferBook.Model.TimeLimited) {
            uint256 most = t.maxDuration / 60 < 120 ? t.maxDuration / 60 : 120;
            uint32 minuteCount = uint32(1 + minuteSeed % most);
            c.quantity = minuteCount;
            a.deposit = uint256(a.price) * minuteCount * (10_000 + bps) / 10_000;
            c.data = abi.encodeCall(escrow.buyMinutes, (c.termsId, c.allowedRegions, c.gdpr, minuteCount));
        } else if (t.model == IOfferBook.Model.FlexiblePeriod) {
            uint256 length = 60 + (windowSeed >> 32) % 4 hours;
            if (length > t.maxDuration) length = t.maxDuration;
            uint256 from = time - 600 + windowSeed % 2 hours;
            if (from + length <= time) from = time + 1 - length;
            a.from = uint40(from);
            a.to = uint40(from + length);
            c.quantity = length;
            a.minimum = uint256(t.minimumCharge) * (10_000 + bps) / 10_000;
            a.deposit = a.minimum + uint256(a.price) * length * (10_000 + bps) / 10_000;
            c.data = abi.encodeCall(escrow.reserve, (c.termsId, c.allowedRegions, c.gdpr, a.from, a.to));
        } else {
            uint256 units = t.model == IOfferBook.Model.FixedPrice ? 1 : t.maxDuration;
            a.deposit = uint256(a.price) * units * (10_000 + bps) / 10_000;
            c.data = abi.encodeCall(escrow.sign, (c.termsId, c.allowedRegions, c.gdpr));
        }
        _sendSign(c, a);
    }

    /// Checks the quote, pays the deposit as the customer, checks what the escrow received and recorded.
    function _sendSign(SignCall memory c, Ghost storage a) internal {
        (uint256 quoted, uint256 quotedPrice, uint24 quotedBps) =
            escrow.quote(c.termsId, c.allowedRegions, c.gdpr, c.quantity);
        if (quoted != a.deposit || quotedPrice != a.price || quotedBps != a.bps) {
            _violate(CHARGE, "quote differs from the formulas");
        }
        uint256 before = _balance(a.tokenId, address(escrow));
        uint256 value = a.tokenId == 0 ? a.deposit : 0;
        (bool ok, bytes memory ret) = a.cust == 2
            ? _rawCall(address(this), address(wallet), abi.encodeCall(wallet.exec, (address(escrow), c.data, value)), 0)
            : _rawCall(customers[a.cust], address(escrow), c.data, value);
        if (!ok) {
            delete _g[c.id];
            return _unexpected("sign", ret);
        }
        if (_balance(a.tokenId, address(escrow)) - before != a.deposit) {
            _violate(CHARGE, "escrow did not receive the deposit");
        }
        if (escrow.depositOf(c.id) != a.deposit) _violate(CHARGE, "depositOf differs from the deposit paid");
        if (escrow.agreementOf(c.id).price != a.price || escrow.agreementOf(c.id).surchargeBps != a.bps) {
            _violate(CHARGE, "agreement price or surcharge differs from the quote");
        }
        a.last = a.model == IOfferBook.Model.FixedPrice || a.model == IOfferBook.Model.DynamicPrice
            ? IConferenceEscrow.Status.Requested
            : IConferenceEscrow.Status.Idle;
        if (escrow.agreementOf(c.id).status != a.last) {
            _violate(TRANSITION, "signing did not lead where the diagram says");
        }
        ids.push(c.id);
        ++done[
            a.model == IOfferBook.Model.TimeLimited
                ? "buyMinutes"
                : a.model == IOfferBook.Model.FlexiblePeriod ? "reserve" : "sign"
        ];
    }

    /// Nothing to act on: sign a new agreement of a random model instead, so that the call is not wasted.
    function _fallback(uint256 seed) internal {
        ++done["fallback"];
        _sign(seed, seed >> 8, seed >> 16, (seed >> 24) % 2 == 0, seed >> 32, seed >> 64, 1 << (seed % 4));
    }

    /// The charge the formulas give for settling agreement `id` now at `availability`.
    function _expectedSettlement(uint256 id, uint16 availability) internal view returns (uint256) {
        Ghost storage a = _g[id];
        if (a.last == IConferenceEscrow.Status.Idle || a.last == IConferenceEscrow.Status.Requested) {
            return availability < 7500 ? 0 : a.minimum; // FlexiblePeriod window passed unused (or its start lapsed)
        }
        IConferenceEscrow.Agreement memory ag = escrow.agreementOf(id);
        return _chargeOf(a, uint256(ag.endedAt) - ag.startedAt, availability);
    }

    /// The model's charge at the terms' price, the surcharge applied to the use as a whole, rounded down once.
    function _chargeOf(Ghost storage a, uint256 used, uint16 availability) internal view returns (uint256) {
        if (availability < 7500) return 0;
        uint256 scaled = uint256(a.price) * (10_000 + uint256(a.bps));
        if (a.model == IOfferBook.Model.FixedPrice) return scaled / 10_000;
        if (a.model == IOfferBook.Model.DynamicPrice) return scaled * used / 10_000;
        if (a.model == IOfferBook.Model.TimeLimited) return scaled * used / 600_000;
        return a.minimum + scaled * used / 10_000;
    }

    /// An agreement whose status bit is in `statusMask` and model bit in `modelMask`, from a random start.
    function _pick(uint256 seed, uint256 statusMask, uint256 modelMask) internal view returns (bool, uint256) {
        uint256 n = ids.length;
        for (uint256 j; j < n; ++j) {
            uint256 id = ids[(seed % n + j) % n];
            Ghost storage a = _g[id];
            // forge-lint: disable-next-line(incorrect-shift)
            uint256 modelBit = 1 << (uint256(a.model) + (a.fromAccount ? 4 : 0));
            if (statusMask & _bit(a.last) != 0 && modelMask & modelBit != 0) return (true, id);
        }
        return (false, 0);
    }

    /// An Ended agreement, or an Idle FlexiblePeriod one (settled once its window is over), or a FlexiblePeriod
    /// start too late to be owed an activation (it lapses with the window and is settled like an unused one).
    function _pickSettleable(uint256 seed) internal view returns (bool found, uint256 id) {
        (found, id) = _pick(seed, _bit(IConferenceEscrow.Status.Ended), ANY);
        if (found && seed % 3 != 0) return (found, id);
        (bool f2, uint256 id2) = _pick(seed, _bit(IConferenceEscrow.Status.Idle), 1 << 3);
        if (f2) return (true, id2);
        (f2, id2) = _pick(seed, _bit(IConferenceEscrow.Status.Requested), 1 << 3);
        if (f2 && uint256(escrow.agreementOf(id2).startedAt) + ACTIVATION_WINDOW >= _g[id2].to) return (true, id2);
        return (found, id);
    }

    /// The current terms of an open offer of one of the models in `modelMask`.
    function _pickTerms(uint256 seed, uint256 modelMask) internal view returns (bool, uint32) {
        uint256 n = offerIds.length;
        for (uint256 j; j < n; ++j) {
            IOfferBook.Offer memory offer = book.offerOf(offerIds[(seed % n + j) % n]);
            if (offer.status == IOfferBook.OfferStatus.Open && modelMask & (1 << uint256(offer.params.model)) != 0) {
                return (true, offer.termsId);
            }
        }
        return (false, 0);
    }

    function _allowedRegions(uint32 served, uint256 seed) internal pure returns (uint32) {
        uint256 r = seed % 4;
        if (r == 0) return 0;
        if (r == 1) return served;
        if (r == 2) return 1; // the EU: every provider serves it
        uint32 bits = uint32(seed >> 8) & served;
        return bits == 0 ? served : bits;
    }

    function _regionOf(uint32 allowedRegions, uint256 seed) internal pure returns (uint8) {
        uint8 count;
        for (uint8 i; i < 32; ++i) {
            if (allowedRegions & (uint32(1) << i) != 0) ++count;
        }
        uint8 pick = uint8(seed % count);
        for (uint8 i; i < 32; ++i) {
            if (allowedRegions & (uint32(1) << i) == 0) continue;
            if (pick == 0) return i;
            --pick;
        }
        return 0;
    }

    /// 0..10,000, a quarter below 75%, the edges 7499 / 7500 / 10,000 frequent.
    function _availability(uint256 seed) internal pure returns (uint16) {
        uint256 r = seed % 10;
        if (r == 0) return 7499;
        if (r == 1) return 7500;
        if (r == 2) return 10_000;
        return uint16(seed % 10_001);
    }

    function _customerCall(uint256 id, bytes memory data, string memory what) internal {
        uint8 cust = _g[id].cust;
        if (cust == 2) _walletCall(data, 0, what);
        else _call(customers[cust], data, what);
    }

    function _walletCall(bytes memory data, uint256 value, string memory what) internal {
        (bool ok, bytes memory ret) =
            _rawCall(address(this), address(wallet), abi.encodeCall(wallet.exec, (address(escrow), data, value)), 0);
        if (!ok) return _unexpected(what, ret);
        ++done[what];
    }

    function _call(address from, bytes memory data, string memory what) internal {
        (bool ok, bytes memory ret) = _rawCall(from, address(escrow), data, 0);
        if (!ok) return _unexpected(what, ret);
        ++done[what];
    }

    function _rawCall(address from, address to, bytes memory data, uint256 value)
        internal
        returns (bool ok, bytes memory ret)
    {
        if (from != address(this)) vm.prank(from);
        (ok, ret) = to.call{value: value}(data);
    }

    /// The handler only makes calls the specification allows: a revert is a finding.
    function _unexpected(string memory what, bytes memory ret) internal {
        bytes4 selector;
        if (ret.length >= 4) selector = bytes4(ret);
        _violate(REVERT, string.concat(what, " reverted although allowed; error selector ", _hex(uint32(selector))));
    }

    function _violate(uint8 kind, string memory what) internal {
        if (violations[kind]++ == 0) firstViolation[kind] = what;
    }

    function _delta(uint256 afterValue, uint256 beforeValue, string memory what) internal returns (uint256) {
        if (afterValue < beforeValue) {
            _violate(CHARGE, string.concat(what, " decreased in an agreement action"));
            return 0;
        }
        return afterValue - beforeValue;
    }

    function _warp(uint256 seconds_) internal {
        time += seconds_;
        vm.warp(time);
    }

    function _warpTo(uint256 t) internal {
        if (t > time) {
            time = t;
            vm.warp(t);
        }
    }

    function _bit(IConferenceEscrow.Status s) internal pure returns (uint256) {
        return 1 << uint256(s);
    }

    function _balance(uint8 tokenId, address who) internal view returns (uint256) {
        return tokenId == 0 ? who.balance : usd.balanceOf(who);
    }

    function _accountOf(uint32 providerId) internal view returns (address) {
        return registry.providerOf(providerId).account;
    }

    function _inShares(IOfferBook.Share[] memory shares, uint32 providerId) internal pure returns (bool) {
        for (uint256 i; i < shares.length; ++i) {
            if (shares[i].providerId == providerId) return true;
        }
        return false;
    }

    function _hex(uint32 v) internal pure returns (string memory) {
        bytes memory out = new bytes(10);
        out[0] = "0";
        out[1] = "x";
        for (uint256 i; i < 8; ++i) {
            uint8 nibble = uint8(v >> (28 - 4 * i)) & 0xf;
            out[2 + i] = bytes1(nibble < 10 ? 48 + nibble : 87 + nibble);
        }
        return string(out);
    }
}
