// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Vm, str} from "../Base.t.sol";
import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";

/// @notice `batch`: each call runs as if its caller had sent it alone; one that reverts changes nothing and is
/// reported with its exact revert data ({BatchCallFailed}); the others take effect. Not payable.
contract BatchTest is UnitBase {
    uint40 internal constant T = uint40(T0);
    uint256 internal constant FUNDS = 1 ether;
    uint256 internal constant STRANGER_KEY = 5;

    // The agreements of the mixed batch (storage: too many for the stack).
    uint256 internal requested;
    uint256 internal running;
    uint256 internal ended;
    uint256 internal settled;
    uint256 internal expiring;

    // ---- helpers ---------------------------------------------------------------------------------

    function _batch(address caller, bytes[] memory calls) internal returns (bool[] memory succeeded) {
        vm.recordLogs();
        vm.prank(caller);
        succeeded = escrow.batch(calls);
    }

    /// The BatchCallFailed events of the last batch (`vm.recordLogs()` before it), in order.
    function _failures() internal returns (uint256[] memory indexes, bytes[] memory reasons) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 n;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IConferenceEscrow.BatchCallFailed.selector) ++n;
        }
        indexes = new uint256[](n);
        reasons = new bytes[](n);
        n = 0;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != IConferenceEscrow.BatchCallFailed.selector) continue;
            assertEq(logs[i].emitter, address(escrow), "emitted by the escrow");
            (indexes[n], reasons[n]) = abi.decode(logs[i].data, (uint256, bytes));
            ++n;
        }
    }

    /// Exactly one call failed: call `index`, with revert data `reason`.
    function _assertOneFailure(bool[] memory succeeded, uint256 index, bytes memory reason) internal {
        (uint256[] memory indexes, bytes[] memory reasons) = _failures();
        assertEq(indexes.length, 1, "one failure reported");
        assertEq(indexes[0], index, "its index");
        assertTrue(keccak256(reasons[0]) == keccak256(reason), "its exact revert data");
        for (uint256 i; i < succeeded.length; ++i) {
            assertEq(succeeded[i], i != index, string.concat("succeeded[", str(i), "]"));
        }
    }

    function _signedOrder(IConferenceEscrow.Order memory order) internal returns (bytes memory) {
        return abi.encodeCall(escrow.openOrder, (order, customer, _signOrder(customerKey, order)));
    }

    function _account() internal view returns (IConferenceEscrow.Account memory) {
        return escrow.accountOf(customer, 0);
    }

    // ---- mixed calls, one bad item ---------------------------------------------------------------

    /// The operator's pass: a new order, an activation, a signed stop settled, a settlement, an expired
    /// conference ended, for account and direct agreements alike; an already settled agreement and a stale
    /// order fail alone, each with its exact error, and change nothing.
    function test_WhenBatchMixed_BadItemsSkippedOthersTakeEffect() public {
        _depositToAccount(0, FUNDS);
        requested = _openOrder(_order(dynamicTerms, DYNAMIC_DEPOSIT, 1)); // account, Requested since T
        running = _active(dynamicTerms); // direct, active since T
        ended = _ended(fixedTerms, 0); // direct, ended at T
        settled = _openOrder(_order(fixedTerms, FIXED_PRICE, 2));
        _activate(settled);
        _stop(settled);
        _settle(settled, 10_000); // account, settled
        expiring = _openOrder(_order(dynamicTerms, DYNAMIC_DEPOSIT, 3));
        _activate(expiring); // account, ends at T + 3600
        IConferenceEscrow.Order memory fresh = _order(minutesTerms, FUNDS, 4);
        fresh.deadline = T + 2 hours;
        IConferenceEscrow.Order memory stale = _order(fixedTerms, FIXED_PRICE, 5);
        stale.deadline = T + 60;
        bytes memory stop = _stopSignature(customerKey, running, T + 600, T + 2 hours);
        vm.warp(T + MAX_DURATION);

        bytes[] memory calls = new bytes[](7);
        calls[0] = _signedOrder(fresh);
        calls[1] = abi.encodeCall(escrow.activate, (requested, EU));
        calls[2] = abi.encodeCall(escrow.stopAndSettle, (running, 10_000, EVIDENCE, "", T + 600, T + 2 hours, stop));
        calls[3] = abi.encodeCall(escrow.settle, (ended, 10_000, EVIDENCE, ""));
        calls[4] = abi.encodeCall(escrow.settle, (settled, 10_000, EVIDENCE, ""));
        calls[5] = abi.encodeCall(escrow.end, (expiring));
        calls[6] = _signedOrder(stale);
        IConferenceEscrow.Account memory before = _account();
        uint256 customerBalance = customer.balance;
        uint256 count = escrow.agreementCount();

        bool[] memory succeeded = _batch(operator, calls);

        (uint256[] memory indexes, bytes[] memory reasons) = _failures();
        assertEq(indexes.length, 2, "two failures reported");
        assertEq(indexes[0], 4, "the settled agreement");
        assertTrue(
            keccak256(reasons[0])
                == keccak256(
                    abi.encodeWithSelector(
                        Errors.Escrow_WrongStatus.selector, settled, IConferenceEscrow.Status.Settled
                    )
                ),
            "WrongStatus(settled, Settled)"
        );
        assertEq(indexes[1], 6, "the stale order");
        assertTrue(
            keccak256(reasons[1])
                == keccak256(abi.encodeWithSelector(Errors.Escrow_OrderExpired.selector, customer, 5, T + 60)),
            "OrderExpired(customer, 5, T + 60)"
        );
        bool[7] memory expected = [true, true, true, true, false, true, false];
        for (uint256 i; i < 7; ++i) {
            assertEq(succeeded[i], expected[i], string.concat("succeeded[", str(i), "]"));
        }

        // What took effect.
        uint256 opened = count + 1;
        assertEq(escrow.agreementCount(), opened, "one agreement opened");
        assertEq(_status(opened), IConferenceEscrow.Status.Requested, "fresh order opened");
        assertEq(_status(requested), IConferenceEscrow.Status.Active, "activated");
        assertEq(_status(running), IConferenceEscrow.Status.Settled, "stopped and settled");
        assertEq(_status(ended), IConferenceEscrow.Status.Settled, "settled");
        assertEq(_status(expiring), IConferenceEscrow.Status.Ended, "ended");
        assertEq(escrow.agreementOf(expiring).endedAt, T + MAX_DURATION, "at its end time");
        uint256 minutesLock = MINUTE_PRICE * MAX_MINUTES_SECONDS / 60;
        assertEq(_account().free, before.free - minutesLock, "the fresh order's lock");
        assertEq(_account().locked, before.locked + minutesLock, "locked");
        assertEq(customer.balance - customerBalance, DYNAMIC_DEPOSIT - 600 * SECOND_PRICE, "direct refund pushed");
        // What did not.
        assertEq(_status(settled), IConferenceEscrow.Status.Settled, "still settled once");
        assertTrue(!escrow.orderNonceUsed(customer, 5), "stale nonce unused");
        assertEq(
            escrow.earningsOf(infraId, 0),
            2 * FIXED_INFRA + 600 * SECOND_INFRA,
            "infra paid for the two fixed conferences and 600 s, once each"
        );
    }

    /// A monitored settlement with a report that is not the monitor's fails alone; the next settles.
    function test_WhenBatchItemHasInvalidReport_OthersSettle() public {
        uint32 termsId = _fixedOfferWithMonitor();
        _depositToAccount(0, FUNDS);
        uint256 first = _openOrder(_order(termsId, 0.12 ether, 1));
        uint256 second = _openOrder(_order(termsId, 0.12 ether, 2));
        _activate(first);
        _activate(second);
        vm.warp(T + 300);
        _stop(first);
        _stop(second);
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(
            escrow.settle, (first, 10_000, EVIDENCE, _signReport(STRANGER_KEY, first, 1, T, T + 300, 10_000, EVIDENCE))
        );
        calls[1] = abi.encodeCall(escrow.settle, (second, 10_000, EVIDENCE, _report(second, 10_000, EVIDENCE, 0)));
        bool[] memory succeeded = _batch(operator, calls);
        _assertOneFailure(succeeded, 0, abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, first));
        assertEq(_status(first), IConferenceEscrow.Status.Ended, "awaits a valid report");
        assertEq(_status(second), IConferenceEscrow.Status.Settled, "settled");
        assertEq(_account().free, FUNDS - 0.24 ether, "the second charged its whole price");
        assertEq(_account().locked, 0.12 ether, "the first's lock stays");
    }

    /// A call that fails after changing state (the nonce used before the balance check) changes nothing.
    function test_WhenBatchItemFailsLate_ItsEarlierEffectsUndone() public {
        _depositToAccount(0, FIXED_PRICE);
        bytes[] memory calls = new bytes[](2);
        calls[0] = _signedOrder(_order(flexibleTerms, FUNDS, 1)); // locks 8.74e16 of 0.1 ether
        calls[1] = _signedOrder(_order(fixedTerms, FIXED_PRICE, 2)); // 0.1 ether: no longer free (nonce used, then refused)
        uint256 flexibleLock = MINIMUM_CHARGE + SECOND_PRICE * MAX_WINDOW;
        bool[] memory succeeded = _batch(operator, calls);
        _assertOneFailure(
            succeeded,
            1,
            abi.encodeWithSelector(
                Errors.Escrow_InsufficientBalance.selector, customer, 0, FIXED_PRICE, FIXED_PRICE - flexibleLock
            )
        );
        assertTrue(escrow.orderNonceUsed(customer, 1), "first used");
        assertTrue(!escrow.orderNonceUsed(customer, 2), "second's nonce not used: its call changed nothing");
        assertEq(escrow.agreementCount(), 1, "one agreement");
    }

    function test_WhenOrderTwiceInOneBatch_SecondRefused() public {
        _depositToAccount(0, FUNDS);
        bytes memory call = _signedOrder(_order(fixedTerms, FIXED_PRICE, 9));
        bytes[] memory calls = new bytes[](2);
        calls[0] = call;
        calls[1] = call;
        bool[] memory succeeded = _batch(operator, calls);
        _assertOneFailure(succeeded, 1, abi.encodeWithSelector(Errors.Escrow_OrderNonceUsed.selector, customer, 9));
        assertEq(_account().locked, FIXED_PRICE, "locked once");
    }

    /// A call that reverts without naming an error (here: no such function; in practice, out of gas) is not a
    /// bad item: the whole batch reverts, so that a short gas limit never skips an item.
    function test_RevertWhen_BatchItemRevertsWithoutReason() public {
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(escrow.cancelOrders, (0, 1));
        calls[1] = hex"deadbeef";
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_BatchCallWithoutReason.selector, 1));
        _batch(customer, calls);
        assertTrue(!escrow.orderNonceUsed(customer, 0), "the other call did not take effect");
    }

    /// An item given too little gas fails for want of it: the batch reverts rather than skip it.
    function test_RevertWhen_BatchItemRunsOutOfGas() public {
        bytes[] memory calls = new bytes[](1);
        calls[0] = abi.encodeCall(escrow.cancelOrders, (0, 1));
        vm.prank(customer);
        (bool ok,) = address(escrow).call{gas: 12_000}(abi.encodeCall(escrow.batch, (calls)));
        assertTrue(!ok, "reverted");
        assertTrue(!escrow.orderNonceUsed(customer, 0), "nothing took effect");
    }

    function test_WhenBatchEmpty_NothingHappens() public {
        bool[] memory succeeded = _batch(operator, new bytes[](0));
        assertEq(succeeded.length, 0, "nothing");
        (uint256[] memory indexes,) = _failures();
        assertEq(indexes.length, 0, "no failure");
    }

    // ---- who calls, and with what ----------------------------------------------------------------

    function test_RevertWhen_BatchSentEth() public {
        bytes[] memory calls = new bytes[](1);
        calls[0] = abi.encodeCall(escrow.depositToAccount, (0, 1));
        vm.prank(customer);
        (bool ok, bytes memory ret) = address(escrow).call{value: 1}(abi.encodeCall(escrow.batch, (calls)));
        assertTrue(!ok, "not payable");
        assertEq(ret.length, 0, "the compiler's check: no data");
        assertEq(address(escrow).balance, 0, "nothing kept");
    }

    /// A batched deposit sees no ETH (the batch is not payable), so an ETH deposit fails; a token deposit
    /// pulls from the caller.
    function test_WhenCustomerBatchesOwnCalls_SenderIsTheCustomer() public {
        uint256 id = _sign(dynamicTerms);
        bytes[] memory calls = new bytes[](5);
        calls[0] = abi.encodeCall(escrow.depositToAccount, (usdId, 5e6));
        calls[1] = abi.encodeCall(escrow.depositToAccount, (0, 1));
        calls[2] = abi.encodeCall(escrow.requestWithdrawal, (usdId, 1e6));
        calls[3] = abi.encodeCall(escrow.cancelOrders, (1, 2));
        calls[4] = abi.encodeCall(escrow.stop, (id));
        uint256 before = customer.balance;
        bool[] memory succeeded = _batch(customer, calls);
        _assertOneFailure(succeeded, 1, abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 1, 0));
        assertEq(escrow.accountOf(customer, usdId).free, 5e6, "deposited from the customer");
        assertEq(usd.balanceOf(customer), USD_MINTED - 5e6, "pulled from the customer");
        assertEq(escrow.accountOf(customer, usdId).withdrawal, 1e6, "the customer's request");
        assertTrue(escrow.orderNonceUsed(customer, 257), "the customer's nonce cancelled");
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "its start called off");
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT, "refund pushed to the customer");
    }

    /// A stranger's batch of operator calls: each call fails with the stranger's own missing role, nothing
    /// changes, and the batch itself does not revert.
    function test_WhenStrangerBatchesOperatorCalls_EachFails() public {
        _depositToAccount(0, FUNDS);
        uint256 pending = _openOrder(_order(fixedTerms, FIXED_PRICE, 1));
        uint256 finished = _ended(dynamicTerms, 100);
        bytes[] memory calls = new bytes[](4);
        calls[0] = _signedOrder(_order(fixedTerms, FIXED_PRICE, 2));
        calls[1] = abi.encodeCall(escrow.activate, (pending, EU));
        calls[2] = abi.encodeCall(escrow.decline, (pending));
        calls[3] = abi.encodeCall(escrow.settle, (finished, 10_000, EVIDENCE, ""));
        bool[] memory succeeded = _batch(stranger, calls);
        (uint256[] memory indexes, bytes[] memory reasons) = _failures();
        bytes memory err =
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, OPERATOR_ROLE);
        assertEq(indexes.length, 4, "every call failed");
        for (uint256 i; i < 4; ++i) {
            assertEq(indexes[i], i, "in order");
            assertTrue(keccak256(reasons[i]) == keccak256(err), "the stranger lacks the operator role");
            assertTrue(!succeeded[i], "failed");
        }
        assertEq(_status(pending), IConferenceEscrow.Status.Requested, "not activated nor declined");
        assertEq(_status(finished), IConferenceEscrow.Status.Ended, "not settled");
        assertTrue(!escrow.orderNonceUsed(customer, 2), "order not opened");
        assertEq(_account().locked, FIXED_PRICE, "one lock only");
    }

    /// Calls that anyone may make work in anyone's batch: a signed stop, an expired conference's end, a
    /// start the operator did not activate in time.
    function test_WhenStrangerBatchesPermissionlessCalls_TheyTakeEffect() public {
        _depositToAccount(0, FUNDS);
        uint256 late = _openOrder(_order(fixedTerms, FIXED_PRICE, 1));
        uint256 live = _active(dynamicTerms);
        bytes memory stop = _stopSignature(customerKey, live, T + 100, T + 2 hours);
        vm.warp(T + ACTIVATION_WINDOW + 1);
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(escrow.reclaim, (late));
        calls[1] = abi.encodeCall(escrow.stopBySignature, (live, T + 100, T + 2 hours, stop));
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(live, T + 100, stranger);
        bool[] memory succeeded = _batch(stranger, calls);
        assertTrue(succeeded[0] && succeeded[1], "both");
        assertEq(_account().free, FUNDS, "reclaimed lock back to free");
        assertEq(escrow.agreementOf(live).endedAt, T + 100, "stopped at the signed time");
    }

    // ---- gas -------------------------------------------------------------------------------------

    /// What batching adds per call, beside the same settlements sent one by one within one transaction
    /// (about 900 measured; on chain each lone call also pays its own 21,000 intrinsic gas, which the batch saves). Like with
    /// like: two sets of ended DynamicPrice conferences from an account, after a warm-up settlement, so that
    /// the providers' earnings are non-zero for both sets.
    uint256 internal constant BATCH_GAS_PER_CALL = 2000;

    function test_BatchAddsAtMost2kGasPerCall() public {
        _depositToAccount(0, FUNDS);
        uint256[] memory ids = new uint256[](11);
        for (uint256 i; i < 11; ++i) {
            ids[i] = _openOrder(_order(dynamicTerms, DYNAMIC_DEPOSIT, i));
            _activate(ids[i]);
        }
        vm.warp(T + 600);
        for (uint256 i; i < 11; ++i) {
            _stop(ids[i]);
        }
        _settle(ids[0], 10_000);
        uint256 alone;
        for (uint256 i = 1; i < 6; ++i) {
            vm.prank(operator);
            uint256 before = gasleft();
            escrow.settle(ids[i], 10_000, EVIDENCE, "");
            alone += before - gasleft();
        }
        bytes[] memory calls = new bytes[](5);
        for (uint256 i; i < 5; ++i) {
            calls[i] = abi.encodeCall(escrow.settle, (ids[6 + i], 10_000, EVIDENCE, ""));
        }
        vm.prank(operator);
        uint256 start = gasleft();
        escrow.batch(calls);
        uint256 batched = start - gasleft();
        assertEq(_status(ids[10]), IConferenceEscrow.Status.Settled, "batch settled");
        assertTrue(
            batched <= alone + 5 * BATCH_GAS_PER_CALL,
            string.concat("5 settlements: batched ", str(batched), " gas, alone ", str(alone))
        );
    }
}
