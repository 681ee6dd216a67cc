// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BaseTest, str} from "../Base.t.sol";
import {Handler} from "./Handler.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";

/// @notice Invariants of the escrow under random sequences driven by {Handler}. See README.md.
contract EscrowInvariantTest is BaseTest {
    /// What forge reads from `targetSelectors()`.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    Handler internal handler;

    function setUp() public override {
        super.setUp();
        // Stablecoin offers for the models the shared setUp only has in ETH, two of them with all three
        // providers (the monitor is not GDPR-compliant: those terms cannot be signed with gdpr).
        uint32 fixedUsd =
            _offerWith(IOfferBook.Model.FixedPrice, 7, MAX_DURATION, [uint88(600_000), 300_000, 50_000], 50_000, 0);
        uint32 minutesUsd =
            _offerWith(IOfferBook.Model.TimeLimited, 3, MAX_MINUTES_SECONDS, [uint88(6000), 3000, 500], 500, 0);
        uint32 flexibleUsd =
            _offerWith(IOfferBook.Model.FlexiblePeriod, 6, MAX_WINDOW, [uint88(0), 60, 30], 10, 100_000);

        uint32[] memory offerIds = new uint32[](8);
        uint32[8] memory termsIds =
            [fixedTerms, dynamicTerms, minutesTerms, flexibleTerms, usdTerms, fixedUsd, minutesUsd, flexibleUsd];
        for (uint256 i; i < 8; ++i) {
            offerIds[i] = escrow.termsOf(termsIds[i]).offerId;
        }
        handler = new Handler(escrow, usd, admin, operator, [infraId, softwareId, monitorId], offerIds);
        vm.label(address(handler), "handler");
    }

    /// Drafts and opens a stablecoin offer with the providers in `mask` (bit 0 infra, 1 software, 2 monitor).
    function _offerWith(
        IOfferBook.Model model,
        uint256 mask,
        uint40 maxDuration,
        uint88[3] memory components,
        uint88 margin,
        uint88 minimumCharge
    ) internal returns (uint32 termsId) {
        address[3] memory all = [infra, software, monitor];
        uint256 count = (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
        address[] memory providers = new address[](count);
        uint88[] memory amounts = new uint88[](count);
        uint256 k;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) == 0) continue;
            providers[k] = all[i];
            amounts[k++] = components[i];
        }
        termsId = _customOffer(model, usdId, maxDuration, providers, amounts, margin, minimumCharge);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](28);
        s[0] = Handler.sign.selector;
        s[1] = Handler.buyMinutes.selector;
        s[2] = Handler.reserve.selector;
        s[3] = Handler.start.selector;
        s[4] = Handler.activate.selector;
        s[5] = Handler.stop.selector;
        s[6] = Handler.end.selector;
        s[7] = Handler.stopAndSettle.selector;
        s[8] = Handler.settle.selector;
        s[9] = Handler.settleOverdue.selector;
        s[10] = Handler.reclaim.selector;
        s[11] = Handler.decline.selector;
        s[12] = Handler.close.selector;
        s[13] = Handler.propose.selector;
        s[14] = Handler.vote.selector;
        s[15] = Handler.execute.selector;
        s[16] = Handler.withdraw.selector;
        s[17] = Handler.withdrawEarnings.selector;
        s[18] = Handler.warp.selector;
        s[19] = Handler.toggleRefusal.selector;
        // Repeated selectors weigh more: activation and votes are the bottlenecks of their lifecycles.
        s[20] = Handler.activate.selector;
        s[21] = Handler.vote.selector;
        s[22] = Handler.vote.selector;
        s[23] = Handler.deposit.selector;
        s[24] = Handler.requestWithdrawal.selector;
        s[25] = Handler.completeWithdrawal.selector;
        s[26] = Handler.openOrder.selector;
        s[27] = Handler.openOrder.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: s});
    }

    // =============================================================================================
    // Invariants
    // =============================================================================================

    /// Per token, the escrow's balance is exactly what it still holds for agreements (deposit − charged −
    /// refunded, as the handler measured them: for an account agreement, what its account keeps locked) plus
    /// the providers' unwithdrawn earnings plus the unwithdrawn credits (refunds that could not be pushed, the
    /// owner's margin and dust) plus the accounts' free balances.
    function invariant_balanceEqualsLiabilities() public view {
        _checkBalance(0);
        _checkBalance(usdId);
    }

    /// Per agreement: charged + refunded == deposit once Settled or Refunded (a TimeLimited account once
    /// closed), and never more than the deposit before. Money moves only at a settlement or a refund.
    function invariant_chargedPlusRefundedEqualsDeposit() public view {
        uint256 n = handler.agreementCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.ids(i);
            Handler.Ghost memory g = handler.ghost(id);
            IConferenceEscrow.Status status = escrow.agreementOf(id).status;
            string memory which = string.concat("agreement ", str(id));
            assertEq(escrow.depositOf(id), g.deposit, string.concat(which, ": depositOf"));
            if (status == IConferenceEscrow.Status.Settled || status == IConferenceEscrow.Status.Refunded) {
                assertEq(g.charged + g.refunded, g.deposit, string.concat(which, ": charged + refunded != deposit"));
            } else {
                assertTrue(g.charged + g.refunded <= g.deposit, string.concat(which, ": more out than in"));
                if (g.model != IOfferBook.Model.TimeLimited || g.fromAccount) {
                    assertEq(g.charged + g.refunded, 0, string.concat(which, ": money moved before the end"));
                }
            }
            if (g.model == IOfferBook.Model.TimeLimited && !g.fromAccount) {
                IConferenceEscrow.MinutesAccount memory account = escrow.minutesAccountOf(id);
                assertEq(account.charged, g.charged, string.concat(which, ": account charged"));
                assertEq(account.deposit, g.deposit, string.concat(which, ": account deposit"));
                assertEq(
                    g.refunded == 0 || status == IConferenceEscrow.Status.Settled,
                    true,
                    string.concat(which, ": refund before close")
                );
            }
        }
    }

    /// Per token: what providers and the owner have withdrawn plus what they can still withdraw equals the
    /// sum of every charge the formulas give (ghost), and the sum of the charges measured per agreement.
    function invariant_paidOutEqualsCharged() public view {
        for (uint8 t; t <= usdId; ++t) {
            uint256 owed = handler.earningsWithdrawn(t) + handler.ownerWithdrawn(t) + escrow.creditOf(admin, t);
            for (uint256 i; i < 3; ++i) {
                owed += escrow.earningsOf(handler.providerIds(i), t);
            }
            assertEq(owed, handler.expectedCharged(t), "paid out + owed to providers and owner != total charged");
            assertEq(
                handler.chargedSum(t), handler.expectedCharged(t), "charges measured per agreement != total charged"
            );
        }
    }

    /// No agreement is settled twice: at most one AgreementSettled event, none once Refunded; a TimeLimited
    /// account is settled once per session that ended (at most one session awaits its settlement) and closed
    /// at most once.
    function invariant_nothingSettledTwice() public view {
        uint256 n = handler.agreementCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.ids(i);
            Handler.Ghost memory g = handler.ghost(id);
            string memory which = string.concat("agreement ", str(id));
            if (g.model == IOfferBook.Model.TimeLimited && !g.fromAccount) {
                assertTrue(g.settleEvents <= g.endEvents, string.concat(which, ": a session settled twice"));
                assertTrue(g.endEvents <= g.settleEvents + 1, string.concat(which, ": two sessions unsettled"));
                assertTrue(g.closeEvents <= 1, string.concat(which, ": closed twice"));
            } else {
                assertTrue(g.settleEvents <= 1, string.concat(which, ": settled twice"));
                assertTrue(g.endEvents <= 1, string.concat(which, ": ended twice"));
                assertEq(g.closeEvents, 0, string.concat(which, ": closed"));
                if (g.cancelEvents != 0 && (g.model != IOfferBook.Model.FlexiblePeriod || g.fromAccount)) {
                    assertEq(g.settleEvents, 0, string.concat(which, ": settled after a refund"));
                }
                if (escrow.agreementOf(id).status == IConferenceEscrow.Status.Refunded) {
                    assertEq(g.settleEvents, 0, string.concat(which, ": Refunded but settled"));
                }
            }
        }
        assertEq(handler.violations(handler.EVENTS()), 0, handler.firstViolation(handler.EVENTS()));
    }

    /// Every status change the handler observed follows the lifecycle diagram of IConferenceEscrow, and no
    /// status changed unobserved.
    /// forge-config: default.invariant.shrink_run_limit = 200
    function invariant_statusTransitionsFollowLifecycle() public view {
        assertEq(handler.violations(handler.TRANSITION()), 0, handler.firstViolation(handler.TRANSITION()));
        uint256 n = handler.agreementCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.ids(i);
            assertEq(
                uint256(escrow.agreementOf(id).status),
                uint256(handler.ghost(id).last),
                string.concat("agreement ", str(id), ": status changed unobserved")
            );
        }
    }

    /// The terms an agreement signed never change: not its price, not its terms version, not a field of
    /// that version, whatever the providers voted since.
    function invariant_signedTermsNeverChange() public view {
        uint256 n = handler.agreementCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.ids(i);
            Handler.Ghost memory g = handler.ghost(id);
            IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
            string memory which = string.concat("agreement ", str(id));
            assertEq(a.price, g.price, string.concat(which, ": price changed"));
            assertEq(a.termsId, g.termsId, string.concat(which, ": terms version changed"));
            assertTrue(handler.signedTermsHash(g.termsId) == g.termsHash, string.concat(which, ": signed other terms"));
        }
        // Every version signed under, field by field (but `open`), as it was when first signed.
        uint256 versions = handler.signedTermsCount();
        for (uint256 i; i < versions; ++i) {
            uint32 termsId = handler.signedTerms(i);
            assertTrue(
                handler.termsHash(termsId) == handler.signedTermsHash(termsId),
                string.concat("terms version ", str(termsId), " changed after agreements signed it")
            );
        }
    }

    /// Every charge follows the model's formula at the signed price, is 0 below 75% availability, is split
    /// floor(charge·component/price) per provider of the signed terms with the rest to the owner, and every
    /// refund is what the specification says (deposit − charge; everything when called off).
    function invariant_chargesFollowTheFormulas() public view {
        assertEq(handler.violations(handler.CHARGE()), 0, handler.firstViolation(handler.CHARGE()));
    }

    /// Customer accounts (issue 19). For every account and token, to the wei: deposits = withdrawals + charges
    /// + locked + free, and locked is what the account's open agreements still hold. Nothing charges an account
    /// beyond its orders: each order's agreement is charged at most its lock, and the lock is at most the
    /// order's maxCost. Every order nonce opened at most one agreement, and is marked used.
    function invariant_accountsAddUp() public view {
        for (uint8 c; c < 3; ++c) {
            for (uint8 t; t <= usdId; ++t) {
                IConferenceEscrow.Account memory account = escrow.accountOf(handler.customers(c), t);
                (uint256 charged, uint256 held) = handler.accountAgreements(c, t);
                string memory which = string.concat("customer ", str(c), " token ", str(t));
                assertEq(
                    handler.accountDeposited(c, t),
                    handler.accountWithdrawn(c, t) + charged + account.locked + account.free,
                    string.concat(which, ": deposits != withdrawals + charges + locked + free")
                );
                assertEq(account.locked, held, string.concat(which, ": locked != what its agreements hold"));
            }
        }
        uint256 n = handler.agreementCount();
        for (uint256 i; i < n; ++i) {
            Handler.Ghost memory g = handler.ghost(handler.ids(i));
            if (!g.fromAccount) continue;
            assertTrue(g.charged <= g.deposit, "an order's agreement charged beyond its lock");
            assertTrue(g.deposit <= g.maxCost, "an order locked beyond its maxCost");
        }
        uint256 filled = handler.filledCount();
        for (uint256 i; i < filled; ++i) {
            uint256 nonce = handler.filledNonces(i);
            address who = handler.nonceCustomer(nonce);
            assertEq(handler.ordersFilled(who, nonce), 1, "an order nonce filled other than once");
            assertTrue(escrow.orderNonceUsed(who, nonce), "a filled order nonce is not marked used");
        }
    }

    /// The handler only makes calls the specification allows; none of them reverts.
    function invariant_allowedCallsNeverRevert() public view {
        assertEq(handler.violations(handler.REVERT()), 0, handler.firstViolation(handler.REVERT()));
    }

    /// After each run (visible with -vv): what the handler did.
    function afterInvariant() public view {
        string[27] memory names = [
            "sign",
            "buyMinutes",
            "reserve",
            "start",
            "activate",
            "stop",
            "end",
            "stopAndSettle",
            "stopBySig",
            "settle",
            "settleOverdue",
            "reclaim",
            "decline",
            "close",
            "propose",
            "vote",
            "execute",
            "withdraw",
            "withdrawEarnings",
            "warp",
            "toggleRefusal",
            "deposit",
            "requestWithdrawal",
            "completeWithdrawal",
            "openOrder",
            "batch",
            "fallback"
        ];
        uint256 total;
        for (uint256 i; i < 27; ++i) {
            uint256 count = handler.done(names[i]);
            _log(names[i], count);
            if (i < 25) total += count; // a batch is counted with the call it carried
        }
        _log("agreements", handler.agreementCount());
        uint256 replaced;
        for (uint256 i; i < handler.agreementCount(); ++i) {
            if (!escrow.termsOf(handler.ghost(handler.ids(i)).termsId).open) ++replaced;
        }
        _log("agreements on replaced terms", replaced);
        _log("terms versions", escrow.termsCount());
        _log("actions done", total);
    }

    // =============================================================================================

    function _checkBalance(uint8 t) internal view {
        uint256 heldSum = handler.heldSum(t);
        uint256 owed;
        for (uint256 i; i < 3; ++i) {
            owed += escrow.earningsOf(handler.providerIds(i), t);
            owed += escrow.creditOf(handler.customers(i), t);
            owed += escrow.accountOf(handler.customers(i), t).free;
        }
        owed += escrow.creditOf(admin, t);
        uint256 balance = t == 0 ? address(escrow).balance : usd.balanceOf(address(escrow));
        assertEq(
            balance,
            heldSum + owed,
            t == 0
                ? "ETH: balance != held + earnings + credits + free"
                : "mUSD: balance != held + earnings + credits + free"
        );
    }

    function _log(string memory what, uint256 value) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", what, value));
        ok;
    }
}
