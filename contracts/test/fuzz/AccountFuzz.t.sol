// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BaseTest} from "../Base.t.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";

/// @notice The arithmetic of customer accounts, to the wei: a random deposit, an order of a random model and
/// constraints, opened alone or in a batch, run for a random time (or called off), settled at a random
/// availability; then the account, the providers and the owner add up, and everything withdrawn leaves the
/// escrow empty.
contract AccountFuzzTest is BaseTest {
    struct Run {
        uint8 model; // 0..3
        uint256 funds;
        uint8 constraint; // none, GDPR, narrowed to the EU, both
        uint40 used;
        uint16 availability;
        uint8 path; // run and settle / stopAndSettle / called off by the customer / declined / reclaimed
        bool batched;
    }

    function testFuzz_AccountConference_ETH(Run memory r) public {
        uint32[4] memory terms = [fixedTerms, dynamicTerms, minutesTerms, flexibleTerms];
        _conference(terms[r.model % 4], 0, r);
    }

    function testFuzz_AccountConference_Stablecoin(Run memory r) public {
        _conference(usdTerms, usdId, r);
    }

    function _conference(uint32 termsId, uint8 tokenId, Run memory r) internal {
        IConferenceEscrow.Terms memory t = escrow.termsOf(termsId);
        IConferenceEscrow.Order memory order = _order(termsId, type(uint256).max, uint256(keccak256(abi.encode(r))));
        order.gdpr = r.constraint % 2 == 1;
        order.allowedRegions = r.constraint / 2 % 2 == 1 ? EU_ONLY : 0;
        uint256 bps = (order.gdpr ? GDPR_SURCHARGE_BPS : 0) + (order.allowedRegions != 0 ? REGION_SURCHARGE_BPS : 0);
        uint256 lock = _lock(t, bps);
        r.funds = bound(r.funds, lock, tokenId == 0 ? 100 ether : USD_MINTED_HERE);
        _depositToAccount(tokenId, r.funds);
        uint256 id = _open(order, r.batched);
        _checkAccount(tokenId, r.funds - lock, lock, "opened");
        assertEq(escrow.depositOf(id), lock, "depositOf = lock");

        uint8 path = r.path % 5;
        uint256 charge;
        if (path == 2) {
            _stop(id);
        } else if (path == 3) {
            vm.prank(operator);
            escrow.decline(id);
        } else if (path == 4) {
            vm.warp(block.timestamp + ACTIVATION_WINDOW + 1);
            escrow.reclaim(id);
        } else {
            _activate(id);
            uint256 used = bound(r.used, 0, t.maxDuration + 100);
            vm.warp(block.timestamp + used);
            if (used > t.maxDuration) used = t.maxDuration;
            uint16 availability = uint16(bound(r.availability, 0, 10_000));
            charge = _charge(t, bps, used, availability);
            if (path == 1) {
                uint40 stopAt = uint40(block.timestamp);
                bytes memory sig = _stopSignature(customerKey, id, stopAt, stopAt);
                vm.prank(operator);
                escrow.stopAndSettle(id, availability, EVIDENCE, "", stopAt, stopAt, sig);
            } else {
                if (used == t.maxDuration) escrow.end(id);
                else _stop(id);
                _settle(id, availability);
            }
        }
        assertTrue(charge <= lock, "charged beyond the lock");
        _checkAccount(tokenId, r.funds - charge, 0, "settled");
        // The split adds up to the charge, to the wei.
        uint256 paid = escrow.earningsOf(infraId, tokenId) + escrow.earningsOf(softwareId, tokenId)
            + escrow.creditOf(admin, tokenId);
        assertEq(paid, charge, "providers + owner = charge");

        // Everything out: the escrow is empty.
        vm.prank(customer);
        escrow.requestWithdrawal(tokenId, type(uint128).max);
        vm.warp(block.timestamp + ACTIVATION_WINDOW);
        if (r.funds != charge) {
            vm.prank(customer);
            escrow.completeWithdrawal(tokenId);
        }
        _payOut(infraPayout, infraId, tokenId);
        _payOut(softwarePayout, softwareId, tokenId);
        if (escrow.creditOf(admin, tokenId) != 0) {
            vm.prank(admin);
            escrow.withdraw(tokenId);
        }
        uint256 left = tokenId == 0 ? address(escrow).balance : usd.balanceOf(address(escrow));
        assertEq(left, 0, "escrow empty");
        _checkAccount(tokenId, 0, 0, "withdrawn");
    }

    uint256 internal constant USD_MINTED_HERE = 1e12;

    function _open(IConferenceEscrow.Order memory order, bool batched) internal returns (uint256 id) {
        if (!batched) return _openOrder(order);
        bytes[] memory calls = new bytes[](1);
        calls[0] = abi.encodeCall(escrow.openOrder, (order, customer, _signOrder(customerKey, order)));
        vm.prank(operator);
        bool[] memory ok = escrow.batch(calls);
        assertTrue(ok[0], "opened in a batch");
        id = escrow.agreementCount();
    }

    function _payOut(address payout, uint32 providerId, uint8 tokenId) internal {
        if (escrow.earningsOf(providerId, tokenId) == 0) return;
        vm.prank(payout);
        escrow.withdrawEarnings(providerId, tokenId);
    }

    /// The deposit of the terms' longest conference, surcharged as a whole.
    function _lock(IConferenceEscrow.Terms memory t, uint256 bps) internal pure returns (uint256) {
        uint256 k = 10_000 + bps;
        if (t.model == IOfferBook.Model.FixedPrice) return uint256(t.price) * k / 10_000;
        if (t.model == IOfferBook.Model.TimeLimited) return uint256(t.price) * t.maxDuration * k / 600_000;
        uint256 minimum = uint256(t.minimumCharge) * k / 10_000;
        return minimum + uint256(t.price) * t.maxDuration * k / 10_000;
    }

    function _charge(IConferenceEscrow.Terms memory t, uint256 bps, uint256 used, uint16 availability)
        internal
        pure
        returns (uint256)
    {
        if (availability < 7500) return 0;
        uint256 k = 10_000 + bps;
        if (t.model == IOfferBook.Model.FixedPrice) return uint256(t.price) * k / 10_000;
        if (t.model == IOfferBook.Model.TimeLimited) return uint256(t.price) * used * k / 600_000;
        return uint256(t.minimumCharge) * k / 10_000 + uint256(t.price) * used * k / 10_000;
    }

    function _checkAccount(uint8 tokenId, uint256 free, uint256 locked, string memory what) internal view {
        IConferenceEscrow.Account memory a = escrow.accountOf(customer, tokenId);
        assertEq(a.free, free, string.concat(what, ": free"));
        assertEq(a.locked, locked, string.concat(what, ": locked"));
    }
}
