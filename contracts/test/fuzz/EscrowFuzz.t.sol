// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BaseTest} from "../Base.t.sol";
import {CustomerWallet} from "../invariant/CustomerWallet.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {Errors} from "../../src/libraries/Errors.sol";

/// @notice End-to-end arithmetic of the escrow for every pricing model and both payment kinds, on offers with
/// random providers, components, margins, surcharges and durations, for random constraints, usages,
/// availabilities and ways of ending. After every settlement: customer refund + provider earnings + owner
/// credit == deposit to the wei, each provider's part == floor(charge·component/price), the charge follows
/// the model's formula, never exceeds the deposit, and is 0 below 75% availability.
contract EscrowFuzzTest is BaseTest {
    using EscrowFuzzLib for uint16;

    /// What a fuzz run draws for the offer.
    struct OfferIn {
        uint88 c0;
        uint88 c1;
        uint88 c2;
        uint88 margin;
        uint88 minimumCharge;
        uint16 gdprBps;
        uint16 regionBps;
        uint40 maxDuration;
        uint8 providerMask;
        uint8 scale;
    }

    /// What a fuzz run draws for the customer and its constraints.
    struct CustomerIn {
        bool contractCustomer;
        uint8 regionChoice;
        uint32 regionBits;
        bool gdpr;
    }

    /// One conference: how it starts, runs, ends and is settled.
    struct SessionIn {
        uint8 cancelPath; // 0..: run; else cancelled before activation (stop / decline / reclaim)
        uint40 activationDelay;
        uint40 used;
        uint40 stopOffset;
        uint8 endPath; // stop / end / stopAndSettle / stopBySignature (by anyone) then settle
        uint8 settlePath; // settle now / settle later / settleOverdue
        uint16 availability;
    }

    /// An offer as published, with what the test needs to recompute everything.
    struct Offer {
        IOfferBook.Model model;
        uint8 tokenId;
        uint32 termsId;
        uint32[] ids;
        address[] payouts;
        uint88[] comps;
        uint256 totalPrice;
        uint32 served;
        bool gdpr;
        uint16 gdprBps;
        uint16 regionBps;
        uint88 minimum;
        uint40 maxDuration;
        uint88 margin;
    }

    /// One agreement under test.
    struct Deal {
        uint256 id;
        address who;
        uint256 key;
        uint32 allowedRegions;
        uint32 regions;
        bool gdpr;
        uint256 price; // the terms' price per unit
        uint256 bps; // the constraint surcharge, applied to each amount as a whole
        uint256 minimum; // after the surcharge (FlexiblePeriod)
        uint256 deposit;
        uint8 region; // where it runs
    }

    /// Balances that move in a settlement.
    struct Snap {
        uint256 customer;
        uint256[] earnings;
        uint256 owner;
        uint256 escrow;
    }

    uint256 internal constant WALLET_KEY = 77;
    CustomerWallet internal wallet;

    function setUp() public override {
        super.setUp();
        wallet = new CustomerWallet(vm.addr(WALLET_KEY));
        wallet.exec(address(usd), abi.encodeCall(usd.approve, (address(escrow), type(uint256).max)), 0);
    }

    // =============================================================================================
    // The tests: every model, both payment kinds
    // =============================================================================================

    function testFuzz_FixedPrice_ETH(OfferIn memory o, CustomerIn memory c, SessionIn memory s) public {
        _signedConference(IOfferBook.Model.FixedPrice, 0, o, c, s);
    }

    function testFuzz_FixedPrice_Stablecoin(OfferIn memory o, CustomerIn memory c, SessionIn memory s) public {
        _signedConference(IOfferBook.Model.FixedPrice, usdId, o, c, s);
    }

    function testFuzz_DynamicPrice_ETH(OfferIn memory o, CustomerIn memory c, SessionIn memory s) public {
        _signedConference(IOfferBook.Model.DynamicPrice, 0, o, c, s);
    }

    function testFuzz_DynamicPrice_Stablecoin(OfferIn memory o, CustomerIn memory c, SessionIn memory s) public {
        _signedConference(IOfferBook.Model.DynamicPrice, usdId, o, c, s);
    }

    function testFuzz_TimeLimited_ETH(OfferIn memory o, CustomerIn memory c, uint32 minutes_, SessionIn[4] memory s)
        public
    {
        _minutes(0, o, c, minutes_, s);
    }

    function testFuzz_TimeLimited_Stablecoin(
        OfferIn memory o,
        CustomerIn memory c,
        uint32 minutes_,
        SessionIn[4] memory s
    ) public {
        _minutes(usdId, o, c, minutes_, s);
    }

    function testFuzz_FlexiblePeriod_ETH(
        OfferIn memory o,
        CustomerIn memory c,
        uint40 fromOffset,
        uint40 length,
        uint40 startDelay,
        SessionIn memory s
    ) public {
        _flexible(0, o, c, fromOffset, length, startDelay, s);
    }

    function testFuzz_FlexiblePeriod_Stablecoin(
        OfferIn memory o,
        CustomerIn memory c,
        uint40 fromOffset,
        uint40 length,
        uint40 startDelay,
        SessionIn memory s
    ) public {
        _flexible(usdId, o, c, fromOffset, length, startDelay, s);
    }

    /// Settling with an availability above 100% is refused, for every model.
    function testFuzz_settleRejectsAvailabilityAbove100(uint8 m, uint16 availability) public {
        availability = uint16(bound(availability, 10_001, type(uint16).max));
        IOfferBook.Model model = IOfferBook.Model(m % 4);
        uint256 id;
        if (model == IOfferBook.Model.FixedPrice) id = _sign(fixedTerms);
        else if (model == IOfferBook.Model.DynamicPrice) id = _sign(dynamicTerms);
        else if (model == IOfferBook.Model.TimeLimited) id = _buyMinutes(5);
        else id = _reserve(uint40(block.timestamp), uint40(block.timestamp + 600));
        if (model == IOfferBook.Model.TimeLimited || model == IOfferBook.Model.FlexiblePeriod) _start(id);
        _activate(id);
        vm.warp(block.timestamp + 30);
        _stop(id);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAvailability.selector, availability));
        escrow.settle(id, availability, bytes32(0), "");
    }

    /// An agreement keeps the terms it signed: after the providers vote new components and margin, it is
    /// still charged its own price and split by its own components; a new agreement uses the new version.
    struct VoteIn {
        uint88 n0;
        uint88 n1;
        uint88 n2;
        uint88 newMargin;
        uint40 used;
        uint16 availability;
        bool inToken;
    }

    function testFuzz_termsKeptAfterVote(OfferIn memory o, VoteIn memory v) public {
        uint8 tokenId = v.inToken ? usdId : 0;
        // Short conferences, so that both agreements can still be activated one after the other.
        o.maxDuration = uint40(bound(o.maxDuration, 1, 30 minutes));
        Offer memory v1 = _makeOffer(IOfferBook.Model.DynamicPrice, tokenId, o);
        CustomerIn memory c;
        Deal memory oldDeal = _signDeal(v1, c);

        Offer memory v2 = _vote(v1, o, v);
        assertTrue(!escrow.termsOf(v1.termsId).open, "old version closed");
        assertEq(escrow.termsOf(v2.termsId).price, v2.totalPrice, "new price");
        Deal memory newDeal = _signDeal(v2, c);

        // Signing the old version is refused now.
        vm.prank(customer);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, v1.termsId));
        escrow.sign(v1.termsId, 0, false);

        assertEq(escrow.agreementOf(oldDeal.id).price, oldDeal.price, "old agreement's price unchanged");
        assertEq(escrow.agreementOf(oldDeal.id).termsId, v1.termsId, "old agreement's terms unchanged");
        assertEq(escrow.termsOf(v1.termsId).price, v1.totalPrice, "old terms unchanged");

        SessionIn memory s;
        s.used = v.used;
        s.availability = v.availability;
        _runAndSettle(v1, oldDeal, s);
        _runAndSettle(v2, newDeal, s);
    }

    /// Every provider of `v1` votes for new components and margin; returns the new version.
    function _vote(Offer memory v1, OfferIn memory o, VoteIn memory v) internal returns (Offer memory v2) {
        uint256 cap = 10 ** bound(o.scale, 0, 20);
        IOfferBook.Share[] memory shares = new IOfferBook.Share[](v1.ids.length);
        uint88[3] memory n = [v.n0, v.n1, v.n2];
        v2 = _copyOffer(v1);
        uint88 margin = uint88(bound(v.newMargin, 0, cap));
        v2.totalPrice = margin;
        for (uint256 i; i < shares.length; ++i) {
            shares[i] = IOfferBook.Share({providerId: v1.ids[i], component: uint88(bound(n[i], 1, cap))});
            v2.comps[i] = shares[i].component;
            v2.totalPrice += shares[i].component;
        }
        uint32 offerId = escrow.termsOf(v1.termsId).offerId;
        vm.prank(registry.providerOf(v1.ids[0]).account);
        uint256 proposalId = book.propose(offerId, shares, margin, 0);
        for (uint256 i; i < shares.length; ++i) {
            vm.prank(registry.providerOf(v1.ids[i]).account);
            book.vote(proposalId, true);
        }
        // A new margin needs the owner's yes too.
        vm.prank(admin);
        book.vote(proposalId, true);
        v2.termsId = book.execute(proposalId);
    }

    // =============================================================================================
    // Flows
    // =============================================================================================

    /// FixedPrice / DynamicPrice: sign, then either run and settle, or call the start off.
    function _signedConference(
        IOfferBook.Model model,
        uint8 tokenId,
        OfferIn memory o,
        CustomerIn memory c,
        SessionIn memory s
    ) internal {
        Offer memory offer = _makeOffer(model, tokenId, o);
        Deal memory d = _signDeal(offer, c);
        uint256 expectedDeposit = model == IOfferBook.Model.FixedPrice
            ? d.price * (10_000 + d.bps) / 10_000
            : d.price * offer.maxDuration * (10_000 + d.bps) / 10_000;
        assertEq(d.deposit, expectedDeposit, "deposit formula");
        assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Requested), "signed: Requested");
        if (s.cancelPath % 4 != 0) {
            _cancelAndCheck(offer, d, s.cancelPath % 4, d.deposit);
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Refunded), "Refunded");
            _withdrawAll(offer, d);
            return;
        }
        _runAndSettle(offer, d, s);
        assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Settled), "Settled");
        _withdrawAll(offer, d);
    }

    /// TimeLimited: buy minutes, up to four sessions (run or cancelled), then close.
    function _minutes(
        uint8 tokenId,
        OfferIn memory o,
        CustomerIn memory c,
        uint32 minuteCount,
        SessionIn[4] memory sessions
    ) internal {
        Offer memory offer = _makeOffer(IOfferBook.Model.TimeLimited, tokenId, o);
        minuteCount = uint32(bound(minuteCount, 1, offer.maxDuration / 60));
        Deal memory d = _buyDeal(offer, c, minuteCount);
        assertEq(
            d.deposit,
            d.price * minuteCount * (10_000 + d.bps) / 10_000,
            "deposit: price per minute x minutes, surcharged"
        );
        Snap memory before = _snap(offer, d.who);
        uint256 charged;
        uint256 left = uint256(minuteCount) * 60;
        for (uint256 i; i < sessions.length; ++i) {
            if (left == 0) {
                vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoMinutesLeft.selector, d.id));
                _as(d.who, abi.encodeCall(escrow.start, (d.id)), 0);
                break;
            }
            _as(d.who, abi.encodeCall(escrow.start, (d.id)), 0);
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Requested), "start: Requested");
            SessionIn memory s = sessions[i];
            if (s.cancelPath % 4 != 0) {
                _cancelAndCheck(offer, d, s.cancelPath % 4, 0);
            } else {
                (uint256 charge, uint256 used, uint16 availability) = _runAndSettle(offer, d, s);
                // Only a paid session consumes its seconds.
                if (availability >= 7500) left -= used;
                charged += charge;
            }
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Idle), "session over: Idle");
            assertEq(escrow.agreementOf(d.id).duration, left, "seconds left");
            assertEq(escrow.minutesAccountOf(d.id).charged, charged, "account charged");
            assertTrue(charged <= d.deposit, "sessions charged above the deposit");
            vm.warp(block.timestamp + 1);
        }
        // Close: the unused minutes' money comes back.
        Snap memory pre = _snap(offer, d.who);
        _as(d.who, abi.encodeCall(escrow.close, (d.id)), 0);
        Snap memory post = _snap(offer, d.who);
        assertEq(post.customer - pre.customer, d.deposit - charged, "close refunds the unused minutes");
        assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Settled), "closed: Settled");
        _checkConservation(offer, before, post, d.deposit, charged, d.deposit - charged);
        _withdrawAll(offer, d);
    }

    /// FlexiblePeriod: reserve a window; run in it, let it pass unused, or call the start off.
    function _flexible(
        uint8 tokenId,
        OfferIn memory o,
        CustomerIn memory c,
        uint40 fromOffset,
        uint40 length,
        uint40 startDelay,
        SessionIn memory s
    ) internal {
        Offer memory offer = _makeOffer(IOfferBook.Model.FlexiblePeriod, tokenId, o);
        length = uint40(bound(length, 1, offer.maxDuration));
        // The window may have begun already (up to an hour ago), as long as it has not ended.
        uint256 from = block.timestamp - 1 hours + bound(fromOffset, 0, 3 days);
        if (from + length <= block.timestamp) from = block.timestamp + 1 - length;
        Deal memory d = _reserveDeal(offer, c, uint40(from), uint40(from + length));
        assertEq(
            d.deposit, d.minimum + d.price * length * (10_000 + d.bps) / 10_000, "deposit: minimum + price x window"
        );
        assertEq(escrow.windowOf(d.id).minimumCharge, d.minimum, "surcharged minimum");

        uint8 path = s.cancelPath % 5;
        if (path == 1) {
            // Never started: once the window is over, the minimum is charged (0 below 75%).
            _settleUnused(offer, d, s, from + length);
            _withdrawAll(offer, d);
            return;
        }
        if (block.timestamp < from) vm.warp(from);
        vm.warp(block.timestamp + bound(startDelay, 0, from + length - 1 - block.timestamp));
        _as(d.who, abi.encodeCall(escrow.start, (d.id)), 0);
        if (path == 2) {
            // The customer calls the start off: the reservation (and its minimum) stays, Idle, nothing back;
            // the minimum is charged once the window is over.
            Snap memory pre = _snap(offer, d.who);
            _as(d.who, abi.encodeCall(escrow.stop, (d.id)), 0);
            Snap memory post = _snap(offer, d.who);
            _checkSplit(offer, pre, post, 0);
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Idle), "cancelled: Idle");
            assertEq(post.customer - pre.customer, 0, "nothing back while the reservation stands");
            _settleUnused(offer, d, s, from + length);
        } else if (path == 3) {
            _cancelAndCheck(offer, d, 2, d.deposit); // declined: the service was not ready, everything back
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Refunded), "Refunded");
        } else if (path == 4 && block.timestamp + ACTIVATION_WINDOW < from + length) {
            _cancelAndCheck(offer, d, 3, d.deposit); // an owed activation timed out: everything back
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Refunded), "Refunded");
        } else if (path == 4) {
            // Started too late to be owed an activation, and not activated: the start lapses with the window.
            _cancelAndCheck(offer, d, 3, 0);
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Idle), "lapsed: Idle");
            _settleUnused(offer, d, s, from + length);
        } else {
            // Activation must happen before the window closes and within the activation window.
            uint256 latest = block.timestamp + ACTIVATION_WINDOW;
            if (latest > from + length - 1) latest = from + length - 1;
            s.activationDelay = uint40(bound(s.activationDelay, 0, latest - block.timestamp));
            _runAndSettle(offer, d, s);
            assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Settled), "Settled");
        }
        _withdrawAll(offer, d);
    }

    // =============================================================================================
    // Steps with their checks
    // =============================================================================================

    /// From Requested: activates, runs, ends (stop / end / stopAndSettle) and settles (settle now or later,
    /// or settleOverdue); checks the charge, the split and the refund. Returns the charge and the seconds used.
    function _runAndSettle(Offer memory offer, Deal memory d, SessionIn memory s)
        internal
        returns (uint256 charge, uint256 used, uint16 availability)
    {
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(d.id);
        // Activate within the activation window.
        uint256 delay = bound(s.activationDelay, 0, ACTIVATION_WINDOW - (block.timestamp - a.startedAt));
        vm.warp(block.timestamp + delay);
        vm.prank(operator);
        escrow.activate(d.id, d.region);
        a = escrow.agreementOf(d.id);
        assertEq(a.startedAt, block.timestamp, "startedAt");
        assertEq(a.region, d.region, "region");

        Snap memory before = _snap(offer, d.who);
        uint256 endedAt;
        (endedAt, availability) = _endAndSettle(d, a, s);
        used = endedAt - a.startedAt;
        assertTrue(used <= a.duration, "used beyond the duration");
        charge = _expectedCharge(offer.model, d.price, d.bps, used, d.minimum, availability);
        _checkSettlement(offer, d, before, charge);
        if (availability < 7500) assertEq(charge, 0, "charged below 75%");
    }

    /// Ends the running conference (stop / end / stopAndSettle) and settles it (now, later, or overdue).
    /// Returns its end and the availability it was settled at.
    function _endAndSettle(Deal memory d, IConferenceEscrow.Agreement memory a, SessionIn memory s)
        internal
        returns (uint256 endedAt, uint16 availability)
    {
        uint256 endsAt = uint256(a.startedAt) + a.duration;
        availability = s.availability.availabilityOf();
        uint8 endPath = s.endPath % 4;
        if (endPath == 2) return (_stopAndSettle(d, a, s, availability), availability);
        if (endPath == 3) {
            // Anyone holding the customer's signed stop submits it; the operator settles.
            endedAt = _stopBySignature(d, a, s);
        } else if (endPath == 0) {
            vm.warp(block.timestamp + bound(s.used, 0, uint256(a.duration) + 1000));
            _as(d.who, abi.encodeCall(escrow.stop, (d.id)), 0);
            endedAt = block.timestamp < endsAt ? block.timestamp : endsAt;
        } else {
            vm.warp(endsAt + bound(s.used, 0, 1000));
            vm.prank(stranger);
            escrow.end(d.id);
            endedAt = endsAt;
        }
        assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Ended), "Ended");
        assertEq(escrow.agreementOf(d.id).endedAt, endedAt, "endedAt");
        uint8 settlePath = s.settlePath % 3;
        if (settlePath == 2) {
            // Not before the settlement window has passed.
            vm.warp(endedAt + SETTLEMENT_WINDOW);
            vm.expectRevert(
                abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, d.id, endedAt + SETTLEMENT_WINDOW)
            );
            escrow.settleOverdue(d.id);
            vm.warp(endedAt + SETTLEMENT_WINDOW + 1 + bound(s.stopOffset, 0, 1000));
            vm.prank(stranger);
            escrow.settleOverdue(d.id);
            availability = _overdueAvailability(d.id);
        } else {
            if (settlePath == 1) vm.warp(block.timestamp + bound(s.stopOffset, 0, SETTLEMENT_WINDOW * 3));
            bytes memory report = _report(d.id, availability, EVIDENCE, 0);
            vm.prank(operator);
            escrow.settle(d.id, availability, EVIDENCE, report);
        }
    }

    /// After a conference's settlement: the split, the refund, and (but for a TimeLimited session, whose
    /// refund waits for the close) refund + earnings + owner credit == deposit.
    function _checkSettlement(Offer memory offer, Deal memory d, Snap memory before, uint256 charge) internal view {
        Snap memory post = _snap(offer, d.who);
        assertTrue(charge <= d.deposit, "charge above the deposit");
        uint256 refund = offer.model == IOfferBook.Model.TimeLimited ? 0 : d.deposit - charge;
        _checkSplit(offer, before, post, charge);
        assertEq(post.customer - before.customer, refund, "refund");
        if (offer.model != IOfferBook.Model.TimeLimited) {
            _checkConservation(offer, before, post, d.deposit, charge, refund);
        }
    }

    function _stopBySignature(Deal memory d, IConferenceEscrow.Agreement memory a, SessionIn memory s)
        internal
        returns (uint256 endedAt)
    {
        uint256 endsAt = uint256(a.startedAt) + a.duration;
        vm.warp(block.timestamp + bound(s.used, 0, uint256(a.duration) + 1000));
        uint256 stoppedAt = uint256(a.startedAt) - 10 + bound(s.stopOffset, 0, uint256(a.duration) + 2000);
        uint40 deadline = uint40(block.timestamp + 60);
        bytes memory sig = _stopSignature(d.key, d.id, uint40(stoppedAt), deadline);
        vm.prank(stranger);
        escrow.stopBySignature(d.id, uint40(stoppedAt), deadline, sig);
        uint256 latest = block.timestamp < endsAt ? block.timestamp : endsAt;
        endedAt = stoppedAt > latest ? latest : stoppedAt;
        if (endedAt < a.startedAt) endedAt = a.startedAt;
    }

    function _stopAndSettle(
        Deal memory d,
        IConferenceEscrow.Agreement memory a,
        SessionIn memory s,
        uint16 availability
    ) internal returns (uint256 endedAt) {
        uint256 endsAt = uint256(a.startedAt) + a.duration;
        vm.warp(block.timestamp + bound(s.used, 0, uint256(a.duration) + 1000));
        // The signed stop may lie before the start, in the past, in the future or beyond the end.
        uint256 stoppedAt = uint256(a.startedAt) - 10 + bound(s.stopOffset, 0, uint256(a.duration) + 2000);
        uint40 deadline = uint40(block.timestamp + 60);
        bytes memory sig = _stopSignature(d.key, d.id, uint40(stoppedAt), deadline);
        uint256 latest = block.timestamp < endsAt ? block.timestamp : endsAt;
        endedAt = stoppedAt > latest ? latest : stoppedAt;
        if (endedAt < a.startedAt) endedAt = a.startedAt;
        bytes memory report = _report(d.id, availability, EVIDENCE, endedAt);
        vm.recordLogs();
        vm.prank(operator);
        escrow.stopAndSettle(d.id, availability, EVIDENCE, report, uint40(stoppedAt), deadline, sig);
        assertEq(_endedAtLogged(d.id), endedAt, "signed stop clamped");
    }

    /// Calls off a requested start: 1 customer stop, 2 operator decline, 3 reclaim after the window.
    function _cancelAndCheck(Offer memory offer, Deal memory d, uint256 how, uint256 expectedRefund) internal {
        Snap memory before = _snap(offer, d.who);
        if (how == 1) {
            _as(d.who, abi.encodeCall(escrow.stop, (d.id)), 0);
        } else if (how == 2) {
            vm.prank(operator);
            escrow.decline(d.id);
        } else {
            uint40 startedAt = escrow.agreementOf(d.id).startedAt;
            vm.warp(uint256(startedAt) + ACTIVATION_WINDOW);
            vm.expectRevert(
                abi.encodeWithSelector(
                    Errors.Escrow_ActivationWindowOpen.selector, d.id, uint256(startedAt) + ACTIVATION_WINDOW
                )
            );
            escrow.reclaim(d.id);
            vm.warp(uint256(startedAt) + ACTIVATION_WINDOW + 1);
            vm.prank(stranger);
            escrow.reclaim(d.id);
        }
        Snap memory post = _snap(offer, d.who);
        assertEq(post.customer - before.customer, expectedRefund, "cancel refund");
        _checkSplit(offer, before, post, 0);
    }

    /// FlexiblePeriod never (or no longer) started: settle after the window (operator, or overdue).
    function _settleUnused(Offer memory offer, Deal memory d, SessionIn memory s, uint256 to) internal {
        Snap memory before = _snap(offer, d.who);
        uint16 availability = s.availability.availabilityOf();
        // Not before the window is over.
        if (block.timestamp < to) {
            vm.prank(operator);
            vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WindowOpen.selector, d.id, to));
            escrow.settle(d.id, availability, bytes32(0), "");
        }
        if (s.settlePath % 2 == 0) {
            vm.warp(to + bound(s.stopOffset, 0, 3 days));
            bytes memory report = _report(d.id, availability, EVIDENCE, 0);
            vm.prank(operator);
            escrow.settle(d.id, availability, EVIDENCE, report);
        } else {
            vm.warp(to + SETTLEMENT_WINDOW + 1 + bound(s.stopOffset, 0, 1000));
            vm.prank(stranger);
            escrow.settleOverdue(d.id);
            availability = _overdueAvailability(d.id);
        }
        uint256 charge = availability >= 7500 ? d.minimum : 0;
        Snap memory post = _snap(offer, d.who);
        _checkSplit(offer, before, post, charge);
        _checkConservation(offer, before, post, d.deposit, charge, d.deposit - charge);
        assertEq(post.customer - before.customer, d.deposit - charge, "refund of an unused window");
        assertEq(uint256(_status(d.id)), uint256(IConferenceEscrow.Status.Settled), "Settled");
    }

    /// Providers and the owner withdraw; the escrow ends empty and each payout got exactly its earnings.
    function _withdrawAll(Offer memory offer, Deal memory d) internal {
        for (uint256 i; i < offer.ids.length; ++i) {
            uint256 e = escrow.earningsOf(offer.ids[i], offer.tokenId);
            if (e == 0) continue;
            uint256 pre = _balance(offer.tokenId, offer.payouts[i]);
            vm.prank(offer.payouts[i]);
            escrow.withdrawEarnings(offer.ids[i], offer.tokenId);
            assertEq(_balance(offer.tokenId, offer.payouts[i]) - pre, e, "payout got its earnings");
            assertEq(escrow.earningsOf(offer.ids[i], offer.tokenId), 0, "earnings cleared");
        }
        uint256 credit = escrow.creditOf(admin, offer.tokenId);
        if (credit != 0) {
            uint256 pre = _balance(offer.tokenId, admin);
            vm.prank(admin);
            escrow.withdraw(offer.tokenId);
            assertEq(_balance(offer.tokenId, admin) - pre, credit, "owner got its credit");
        }
        uint256 customerCredit = escrow.creditOf(d.who, offer.tokenId);
        if (customerCredit != 0) {
            assertEq(d.who, address(wallet), "only the refusing customer has credit");
            if (offer.tokenId == 0) wallet.setAccept(true);
            else usd.setBlocked(address(wallet), false);
            uint256 pre = _balance(offer.tokenId, address(wallet));
            _as(d.who, abi.encodeCall(escrow.withdraw, (offer.tokenId)), 0);
            assertEq(_balance(offer.tokenId, address(wallet)) - pre, customerCredit, "customer got its credit");
        }
        assertEq(_balance(offer.tokenId, address(escrow)), 0, "escrow empty once everything is paid out");
    }

    // =============================================================================================
    // Checks
    // =============================================================================================

    /// Each provider's earnings rose by floor(charge·component/price); the owner's credit by the rest.
    function _checkSplit(Offer memory offer, Snap memory before, Snap memory post, uint256 charge) internal pure {
        uint256 parts;
        for (uint256 i; i < offer.ids.length; ++i) {
            uint256 expected = charge * offer.comps[i] / offer.totalPrice;
            assertEq(post.earnings[i] - before.earnings[i], expected, "provider part");
            parts += expected;
        }
        assertTrue(parts <= charge, "parts above the charge");
        assertEq(post.owner - before.owner, charge - parts, "owner gets the rest");
    }

    /// refund + provider earnings + owner credit == deposit, and the escrow holds exactly what it owes.
    function _checkConservation(
        Offer memory offer,
        Snap memory before,
        Snap memory post,
        uint256 deposit,
        uint256 charge,
        uint256 refund
    ) internal pure {
        uint256 earned;
        for (uint256 i; i < offer.ids.length; ++i) {
            earned += post.earnings[i] - before.earnings[i];
        }
        uint256 ownerCredit = post.owner - before.owner;
        assertEq(post.customer - before.customer, refund, "customer refund");
        assertEq(refund + earned + ownerCredit, deposit, "refund + earnings + owner credit == deposit");
        assertEq(earned + ownerCredit, charge, "earnings + owner credit == charge");
        assertTrue(charge <= deposit, "charge above the deposit");
    }

    /// The model's charge at the terms' price, the surcharge applied to the use as a whole, rounded down once.
    function _expectedCharge(
        IOfferBook.Model model,
        uint256 price,
        uint256 bps,
        uint256 used,
        uint256 minimum,
        uint256 availability
    ) internal pure returns (uint256) {
        if (availability < 7500) return 0;
        if (model == IOfferBook.Model.FixedPrice) return price * (10_000 + bps) / 10_000;
        if (model == IOfferBook.Model.DynamicPrice) return price * used * (10_000 + bps) / 10_000;
        if (model == IOfferBook.Model.TimeLimited) return price * used * (10_000 + bps) / 600_000;
        return minimum + price * used * (10_000 + bps) / 10_000;
    }

    // =============================================================================================
    // Setup helpers
    // =============================================================================================

    /// Drafts an offer with a random non-empty subset of the three providers, random components (at a random
    /// scale, so that small prices and their rounding are exercised), margin, surcharges and duration;
    /// each provider sets its component; the admin opens it.
    function _makeOffer(IOfferBook.Model model, uint8 tokenId, OfferIn memory x) internal returns (Offer memory o) {
        uint256 cap = 10 ** bound(x.scale, 0, 20);
        uint256 mask = bound(x.providerMask, 1, 7);
        uint256 n = (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
        o.model = model;
        o.tokenId = tokenId;
        o.ids = new uint32[](n);
        o.payouts = new address[](n);
        o.comps = new uint88[](n);
        uint32[3] memory all = [infraId, softwareId, monitorId];
        uint88[3] memory raw = [x.c0, x.c1, x.c2];
        uint256 k;
        o.served = type(uint32).max;
        o.gdpr = true;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) == 0) continue;
            o.ids[k] = all[i];
            o.payouts[k] = registry.providerOf(all[i]).payout;
            o.comps[k] = uint88(bound(raw[i], 1, cap));
            o.totalPrice += o.comps[k];
            o.served &= registry.providerOf(all[i]).regions;
            o.gdpr = o.gdpr && registry.providerOf(all[i]).gdpr;
            ++k;
        }
        o.margin = uint88(bound(x.margin, 0, cap));
        o.totalPrice += o.margin;
        o.minimum = model == IOfferBook.Model.FlexiblePeriod ? uint88(bound(x.minimumCharge, 1, cap * 1000)) : 0;
        o.maxDuration = uint40(bound(x.maxDuration, model == IOfferBook.Model.TimeLimited ? 60 : 1, 10 days));
        o.gdprBps = x.gdprBps;
        o.regionBps = x.regionBps;
        _open(o);
    }

    /// createOffer by the admin, setComponent by each provider, openOffer by the admin; checks the terms.
    function _open(Offer memory o) internal {
        uint32 offerId = _draft(
            IOfferBook.OfferParams({
                model: o.model,
                tokenId: o.tokenId,
                maxDuration: o.maxDuration,
                margin: o.margin,
                minimumCharge: o.minimum,
                gdprSurchargeBps: o.gdprBps,
                regionSurchargeBps: o.regionBps
            }),
            o.ids
        );
        for (uint256 i; i < o.ids.length; ++i) {
            _setComponent(registry.providerOf(o.ids[i]).account, offerId, o.comps[i]);
        }
        o.termsId = _openOffer(offerId);

        IConferenceEscrow.Terms memory t = escrow.termsOf(o.termsId);
        assertEq(t.price, o.totalPrice, "terms price = components + margin");
        assertEq(t.regions, o.served, "terms regions = common regions");
        assertEq(t.gdpr, o.gdpr, "terms gdpr = every provider's");
        assertEq(t.shares.length, o.ids.length, "shares");
        assertEq(t.owner, admin, "owner");
    }

    function _copyOffer(Offer memory a) internal pure returns (Offer memory b) {
        b.model = a.model;
        b.tokenId = a.tokenId;
        b.termsId = a.termsId;
        b.ids = a.ids;
        b.payouts = a.payouts;
        b.totalPrice = a.totalPrice;
        b.served = a.served;
        b.gdpr = a.gdpr;
        b.gdprBps = a.gdprBps;
        b.regionBps = a.regionBps;
        b.minimum = a.minimum;
        b.maxDuration = a.maxDuration;
        b.margin = a.margin;
        b.comps = new uint88[](a.comps.length);
        for (uint256 i; i < a.comps.length; ++i) {
            b.comps[i] = a.comps[i];
        }
    }

    /// The customer, its constraints, and the surcharged price they cost.
    function _deal(Offer memory offer, CustomerIn memory c) internal returns (Deal memory d) {
        if (c.contractCustomer) {
            d.who = address(wallet);
            d.key = WALLET_KEY;
            // The contract customer refuses ETH and is blocked by the stablecoin: every refund is credited.
            wallet.setAccept(false);
        } else {
            d.who = customer;
            d.key = customerKey;
        }
        uint8 choice = c.regionChoice % 5;
        if (choice == 0) d.allowedRegions = 0; // every region served
        else if (choice == 1) d.allowedRegions = offer.served; // the same, explicitly
        else if (choice == 2) d.allowedRegions = EU_ONLY; // narrowed (every provider serves the EU)
        else if (choice == 3) d.allowedRegions = offer.served | (uint32(1) << 20); // a superset: not narrowed
        else d.allowedRegions = (c.regionBits & offer.served) == 0 ? EU_ONLY : c.regionBits;
        d.regions = d.allowedRegions == 0 ? offer.served : d.allowedRegions & offer.served;
        // Run in the lowest allowed region.
        while (d.regions & (uint32(1) << d.region) == 0) {
            ++d.region;
        }
        uint256 bps = d.regions != offer.served ? offer.regionBps : 0;
        if (c.gdpr && !offer.gdpr) {
            // Impossible: one provider is not GDPR-compliant.
            vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_GdprUnavailable.selector, offer.termsId));
            escrow.quote(offer.termsId, d.allowedRegions, true, 1);
        } else if (c.gdpr) {
            d.gdpr = true;
            bps += offer.gdprBps;
        }
        d.price = offer.totalPrice;
        d.bps = bps;
        d.minimum = uint256(offer.minimum) * (10_000 + bps) / 10_000;
    }

    function _fund(Offer memory offer, Deal memory d, uint256 amount) internal {
        if (offer.tokenId == 0) {
            vm.deal(d.who, amount);
        } else {
            usd.setBlocked(d.who, false);
            usd.mint(d.who, amount);
        }
    }

    /// After signing: the customer paid the deposit, the escrow holds it, the agreement records it.
    function _signed(Offer memory offer, Deal memory d, uint256 customerBefore, uint256 escrowBefore) internal {
        assertEq(customerBefore - _balance(offer.tokenId, d.who), d.deposit, "customer paid the deposit");
        assertEq(_balance(offer.tokenId, address(escrow)) - escrowBefore, d.deposit, "escrow received it");
        assertEq(escrow.depositOf(d.id), d.deposit, "depositOf");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(d.id);
        assertEq(a.price, d.price, "the terms' price");
        assertEq(a.surchargeBps, d.bps, "surcharge");
        assertEq(a.allowedRegions, d.regions, "allowed regions");
        assertEq(a.customer, d.who, "customer");
        if (d.who == address(wallet) && offer.tokenId != 0) usd.setBlocked(address(wallet), true);
    }

    function _signDeal(Offer memory offer, CustomerIn memory c) internal returns (Deal memory d) {
        d = _deal(offer, c);
        (uint256 q,,) = escrow.quote(offer.termsId, d.allowedRegions, d.gdpr, 0);
        d.deposit = q;
        _fund(offer, d, q);
        uint256 cb = _balance(offer.tokenId, d.who);
        uint256 eb = _balance(offer.tokenId, address(escrow));
        bytes memory ret = _as(
            d.who, abi.encodeCall(escrow.sign, (offer.termsId, d.allowedRegions, d.gdpr)), offer.tokenId == 0 ? q : 0
        );
        d.id = abi.decode(ret, (uint256));
        _signed(offer, d, cb, eb);
    }

    function _buyDeal(Offer memory offer, CustomerIn memory c, uint32 minuteCount) internal returns (Deal memory d) {
        d = _deal(offer, c);
        (uint256 q,,) = escrow.quote(offer.termsId, d.allowedRegions, d.gdpr, minuteCount);
        d.deposit = q;
        _fund(offer, d, q);
        uint256 cb = _balance(offer.tokenId, d.who);
        uint256 eb = _balance(offer.tokenId, address(escrow));
        bytes memory ret = _as(
            d.who,
            abi.encodeCall(escrow.buyMinutes, (offer.termsId, d.allowedRegions, d.gdpr, minuteCount)),
            offer.tokenId == 0 ? q : 0
        );
        d.id = abi.decode(ret, (uint256));
        _signed(offer, d, cb, eb);
        assertEq(escrow.minutesAccountOf(d.id).deposit, q, "account deposit");
    }

    function _reserveDeal(Offer memory offer, CustomerIn memory c, uint40 from, uint40 to)
        internal
        returns (Deal memory d)
    {
        d = _deal(offer, c);
        (uint256 q,,) = escrow.quote(offer.termsId, d.allowedRegions, d.gdpr, to - from);
        d.deposit = q;
        _fund(offer, d, q);
        uint256 cb = _balance(offer.tokenId, d.who);
        uint256 eb = _balance(offer.tokenId, address(escrow));
        bytes memory ret = _as(
            d.who,
            abi.encodeCall(escrow.reserve, (offer.termsId, d.allowedRegions, d.gdpr, from, to)),
            offer.tokenId == 0 ? q : 0
        );
        d.id = abi.decode(ret, (uint256));
        _signed(offer, d, cb, eb);
    }

    /// Calls the escrow as `who` (the EOA customer, or the contract customer through its exec).
    function _as(address who, bytes memory data, uint256 value) internal returns (bytes memory ret) {
        if (who == address(wallet)) return wallet.exec(address(escrow), data, value);
        vm.prank(who);
        bool ok;
        (ok, ret) = address(escrow).call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// What the customer holds plus its credit, every provider's earnings, the owner's credit, the escrow's balance.
    function _snap(Offer memory offer, address who) internal view returns (Snap memory s) {
        s.customer = _balance(offer.tokenId, who) + escrow.creditOf(who, offer.tokenId);
        s.earnings = new uint256[](offer.ids.length);
        for (uint256 i; i < offer.ids.length; ++i) {
            s.earnings[i] = escrow.earningsOf(offer.ids[i], offer.tokenId);
        }
        s.owner = escrow.creditOf(admin, offer.tokenId);
        s.escrow = _balance(offer.tokenId, address(escrow));
    }

    function _balance(uint8 tokenId, address who) internal view returns (uint256) {
        return tokenId == 0 ? who.balance : usd.balanceOf(who);
    }
}

library EscrowFuzzLib {
    /// Availabilities spread over 0..10,000 with a quarter of them below 75% and the edges 7499/7500 common.
    function availabilityOf(uint16 raw) internal pure returns (uint16) {
        uint256 r = uint256(raw) % 10_010;
        if (r >= 10_001) return r % 2 == 0 ? 7499 : 7500;
        return uint16(r);
    }
}
