// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {BatchDelegate, RefusingErc1271Delegate, SmartWallet} from "../mocks/Actors.sol";

contract StopSignatureTest is UnitBase {
    uint256 internal constant WALLET_OWNER_KEY = 7;
    uint256 internal constant STRANGER_KEY = 5;
    uint40 internal constant T = uint40(T0);

    /// A DynamicPrice conference activated at T, now at T + 600.
    function _running() internal returns (uint256 id) {
        id = _active(dynamicTerms);
        vm.warp(T + 600);
    }

    function _stopAndSettle(uint256 id, uint16 availabilityBps, uint40 stoppedAt, uint40 deadline, bytes memory sig)
        internal
    {
        vm.recordLogs();
        vm.prank(operator);
        escrow.stopAndSettle(id, availabilityBps, EVIDENCE, "", stoppedAt, deadline, sig);
    }

    // ---- requirements ----------------------------------------------------------------------------

    function test_RevertWhen_StopAndSettleCallerNotOperator() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        _expectUnauthorized(customer, OPERATOR_ROLE);
        vm.prank(customer);
        escrow.stopAndSettle(id, 10_000, bytes32(0), "", _now(), _now() + 60, sig);
    }

    function test_RevertWhen_StopAndSettleAvailabilityAboveWhole() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAvailability.selector, uint16(10_001)));
        _stopAndSettle(id, 10_001, _now(), _now() + 60, sig);
    }

    function test_RevertWhen_StopAndSettleAgreementUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 9));
        _stopAndSettle(9, 10_000, _now(), _now() + 60, "");
    }

    function test_RevertWhen_StopAndSettleRequested() public {
        uint256 id = _sign(dynamicTerms);
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        _stopAndSettle(id, 10_000, _now(), _now() + 60, sig);
    }

    function test_RevertWhen_StopAndSettleEnded() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        _stop(id);
        _expectWrongStatus(id, IConferenceEscrow.Status.Ended);
        _stopAndSettle(id, 10_000, _now(), _now() + 60, sig);
    }

    function test_RevertWhen_DeadlinePassed() public {
        uint256 id = _running();
        uint40 deadline = _now() + 60;
        bytes memory sig = _stopSignature(customerKey, id, _now(), deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_SignatureExpired.selector, id, deadline));
        _stopAndSettle(id, 10_000, deadline - 60, deadline, sig);
    }

    function test_WhenAtDeadline_Accepted() public {
        uint256 id = _running();
        uint40 deadline = _now() + 60;
        bytes memory sig = _stopSignature(customerKey, id, _now(), deadline);
        vm.warp(deadline);
        _stopAndSettle(id, 10_000, deadline - 60, deadline, sig);
        assertEq(_endedAtLogged(id), T + 600, "signed time");
    }

    function test_RevertWhen_SignerNotCustomer() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(STRANGER_KEY, id, _now(), _now() + 60);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, _now(), _now() + 60, sig);
    }

    function test_RevertWhen_SignatureMalformed() public {
        uint256 id = _running();
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, _now(), _now() + 60, hex"0102030405");
    }

    function test_RevertWhen_SignatureForAnotherAgreement() public {
        uint256 first = _active(dynamicTerms);
        uint256 second = _active(dynamicTerms);
        vm.warp(T + 600);
        bytes memory sig = _stopSignature(customerKey, first, _now(), _now() + 60);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, second));
        _stopAndSettle(second, 10_000, _now(), _now() + 60, sig);
    }

    function test_RevertWhen_StoppedAtDiffersFromSigned() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, _now() - 500, _now() + 60, sig);
    }

    function test_RevertWhen_DeadlineDiffersFromSigned() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, _now(), _now() + 3600, sig);
    }

    function test_RevertWhen_SignatureOfPreviousSessionReplayed() public {
        uint256 id = _activeMinutes(10); // session 1 started at T
        vm.warp(T + 100);
        uint40 deadline = T + 10_000;
        bytes memory sig = _stopSignature(customerKey, id, T + 100, deadline);
        _stopAndSettle(id, 10_000, T + 100, deadline, sig);
        assertEq(escrow.agreementOf(id).duration, 500, "session 1 paid");

        _start(id);
        _activate(id); // session 2 starts at T + 100
        vm.warp(T + 400);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, T + 100, deadline, sig);
    }

    // ---- outcomes --------------------------------------------------------------------------------

    function test_WhenCustomerEoaSigned_EndsAtSignedTimeAndSettles() public {
        uint256 id = _running();
        uint40 stoppedAt = T + 500;
        uint40 deadline = T + 660;
        bytes memory sig = _stopSignature(customerKey, id, stoppedAt, deadline);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T + 500, operator);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 5e14, 3.1e15, false);
        _stopAndSettle(id, 10_000, stoppedAt, deadline, sig);

        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Settled, "settled");
        assertEq(_endedAtLogged(id), T + 500, "signed time");
        assertEq(a.endedAt, 0, "kept in the event only");
        assertEq(customer.balance - before, 3.1e15, "refund");
        assertEq(escrow.earningsOf(infraId, 0), 3e14, "infra 500 x 6e11");
        assertEq(escrow.earningsOf(softwareId, 0), 1.5e14, "software");
        assertEq(escrow.creditOf(admin, 0), 5e13, "margin");
        assertEq(operator.balance, 0, "nothing to the operator");
    }

    function test_WhenSmartWalletSigned_Erc1271Accepted() public {
        SmartWallet wallet = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        uint256 id = wallet.sign{value: DYNAMIC_DEPOSIT}(escrow, dynamicTerms);
        _activate(id);
        vm.warp(T + 600);
        bytes memory sig = _stopSignature(WALLET_OWNER_KEY, id, T + 300, T + 700);
        _stopAndSettle(id, 10_000, T + 300, T + 700, sig);
        assertEq(_endedAtLogged(id), T + 300, "signed time");
        assertEq(address(wallet).balance, DYNAMIC_DEPOSIT - 3e14, "refund pushed to the wallet");
        assertEq(escrow.creditOf(address(wallet), 0), 0, "nothing deferred");
    }

    function test_RevertWhen_SmartWalletOwnerDidNotSign() public {
        SmartWallet wallet = new SmartWallet(vm.addr(WALLET_OWNER_KEY));
        uint256 id = wallet.sign{value: DYNAMIC_DEPOSIT}(escrow, dynamicTerms);
        _activate(id);
        vm.warp(T + 600);
        bytes memory sig = _stopSignature(customerKey, id, T + 300, T + 700);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, T + 300, T + 700, sig);
    }

    function test_WhenStoppedAtInFuture_ClampedToNow() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, T + 2000, T + 3000);
        _stopAndSettle(id, 10_000, T + 2000, T + 3000, sig);
        assertEq(_endedAtLogged(id), T + 600, "now");
        assertEq(escrow.earningsOf(infraId, 0), 600 * SECOND_INFRA, "600 seconds paid");
    }

    function test_WhenStoppedAtAfterEndTime_ClampedToEndTime() public {
        uint256 id = _active(dynamicTerms);
        vm.warp(T + 5000);
        bytes memory sig = _stopSignature(customerKey, id, T + 4000, T + 6000);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, DYNAMIC_DEPOSIT, 0, false);
        _stopAndSettle(id, 10_000, T + 4000, T + 6000, sig);
        assertEq(_endedAtLogged(id), T + MAX_DURATION, "end time");
        assertEq(customer.balance, before, "nothing back");
    }

    function test_WhenStoppedAtBeforeStart_ClampedToStart() public {
        uint256 id = _sign(dynamicTerms);
        vm.warp(T + 100);
        _activate(id);
        vm.warp(T + 600);
        bytes memory sig = _stopSignature(customerKey, id, T + 50, T + 700);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T + 100, operator);
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 0, DYNAMIC_DEPOSIT, false);
        _stopAndSettle(id, 10_000, T + 50, T + 700, sig);
        assertEq(_endedAtLogged(id), T + 100, "start");
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT, "nothing used");
    }

    function test_WhenSignedStopBelow75Percent_RefundsEverything() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, T + 500, T + 700);
        uint256 before = customer.balance;
        _stopAndSettle(id, 7000, T + 500, T + 700, sig);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT, "everything back");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    function test_WhenSignedStopOfSession_ConsumesSecondsToSignedTime() public {
        uint256 id = _activeMinutes(10);
        vm.warp(T + 300);
        bytes memory sig = _stopSignature(customerKey, id, T + 120, T + 400);
        _stopAndSettle(id, 10_000, T + 120, T + 400, sig);
        assertEq(_status(id), IConferenceEscrow.Status.Idle, "idle");
        assertEq(escrow.agreementOf(id).duration, 480, "120 seconds consumed");
        assertEq(escrow.minutesAccountOf(id).charged, 1.2e14, "charged");
    }

    function test_WhenSignedStopOfFlexible_ChargesMinimumPlusSeconds() public {
        uint256 id = _activeFlexible(); // active from T + 100, deposit 5e15
        vm.warp(T + 1000);
        bytes memory sig = _stopSignature(customerKey, id, T + 600, T + 1100);
        uint256 before = customer.balance;
        _stopAndSettle(id, 10_000, T + 600, T + 1100, sig);
        assertEq(customer.balance - before, 5e15 - 1e15 - 500 * SECOND_PRICE, "refund");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenStopDigestQueried_MatchesEip712() public view {
        bytes32 typeHash = keccak256("Stop(uint256 agreementId,uint32 session,uint40 stoppedAt,uint40 deadline)");
        assertTrue(escrow.STOP_TYPEHASH() == typeHash, "type hash");
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ConferenceEscrow"),
                keccak256("1"),
                block.chainid,
                address(escrow)
            )
        );
        bytes32 structHash = keccak256(abi.encode(typeHash, uint256(1), uint32(2), uint40(3), uint40(4)));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", domain, structHash));
        assertTrue(escrow.stopDigest(1, 2, 3, 4) == expected, "EIP-712 digest");
    }

    // ---- the session a signature names -----------------------------------------------------------

    function test_WhenSessionRuns_ItsNumberIsSettledSessionsPlusOne() public {
        uint256 id = _activeMinutes(10);
        assertEq(_session(id), 1, "first session");
        vm.warp(T + 60);
        _stop(id);
        _settle(id, 10_000);
        assertEq(escrow.minutesAccountOf(id).sessions, 1, "one settled");
        _start(id);
        _activate(id);
        assertEq(_session(id), 2, "second session");
        vm.warp(T + 120);
        _stop(id);
        _settle(id, 5000); // not paid, but over all the same
        assertEq(escrow.minutesAccountOf(id).sessions, 2, "two settled");
        assertEq(_session(_active(fixedTerms)), 1, "other models: always 1");
    }

    /// Regression (review, two sessions in one second share a signature): a TimeLimited session started,
    /// activated, stopped and settled within one second, then a second one started in that same second: a
    /// stop signed for the first cannot end the second (it used to name the conference by its start time,
    /// which both shared).
    function test_RevertWhen_SignatureOfSessionStartedSameSecondReplayed() public {
        uint256 id = _activeMinutes(10);
        bytes memory first = _stopSignature(customerKey, id, T, T + 600);
        _stopAndSettle(id, 10_000, T, T + 600, first);
        _start(id);
        _activate(id);
        assertEq(escrow.agreementOf(id).startedAt, T, "both sessions started at T");
        vm.warp(T + 300);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        escrow.stopBySignature(id, T, T + 600, first);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        _stopAndSettle(id, 10_000, T, T + 600, first);
        // The second session's own signature works.
        escrow.stopBySignature(id, T + 200, T + 600, _stopSignature(customerKey, id, 2, T + 200, T + 600));
        assertEq(escrow.agreementOf(id).endedAt, T + 200, "second session stopped by its own signature");
    }

    // ---- stopBySignature: anyone submits the customer's signed stop ------------------------------

    /// Regression (review, the operator can sit on a signed stop): the operator ignores the customer's signed
    /// stop; the customer (or a relayer, a watchtower) submits it itself, and pays only to the signed time,
    /// not to the end time. The settlement stays the operator's, and anyone's once it is overdue.
    function test_WhenOperatorIgnoresSignedStop_AnyoneSubmitsIt() public {
        uint256 id = _active(dynamicTerms);
        bytes memory sig = _stopSignature(customerKey, id, T + 300, T + 3000);
        vm.warp(T + 2000); // the operator sat on it
        vm.expectEmit();
        emit IConferenceEscrow.AgreementEnded(id, T + 300, stranger);
        vm.prank(stranger);
        escrow.stopBySignature(id, T + 300, T + 3000, sig);
        assertEq(_status(id), IConferenceEscrow.Status.Ended, "ended");
        assertEq(escrow.agreementOf(id).endedAt, T + 300, "at the signed time");

        // Only the operator settles within the settlement window.
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, T + 300 + SETTLEMENT_WINDOW)
        );
        escrow.settleOverdue(id);
        vm.warp(T + 300 + SETTLEMENT_WINDOW + 1);
        uint256 before = customer.balance;
        vm.prank(stranger);
        escrow.settleOverdue(id);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 300 * SECOND_PRICE, "paid 300 seconds only");
    }

    function test_WhenCustomerSubmitsOwnSignedStop_OperatorSettles() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, T + 500, T + 700);
        vm.prank(customer);
        escrow.stopBySignature(id, T + 500, T + 700, sig);
        uint256 before = customer.balance;
        _settle(id, 10_000);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 500 * SECOND_PRICE, "refund");
    }

    function test_WhenSignedStopInFuture_StopBySignatureClampsToNow() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, T + 2000, T + 3000);
        escrow.stopBySignature(id, T + 2000, T + 3000, sig);
        assertEq(escrow.agreementOf(id).endedAt, T + 600, "now");
    }

    function test_RevertWhen_StopBySignatureNotCustomers() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(STRANGER_KEY, id, T + 500, T + 700);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        escrow.stopBySignature(id, T + 500, T + 700, sig);
    }

    function test_RevertWhen_StopBySignatureExpired() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, T + 500, T + 599);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_SignatureExpired.selector, id, T + 599));
        escrow.stopBySignature(id, T + 500, T + 599, sig);
    }

    function test_RevertWhen_StopBySignatureNotRunning() public {
        uint256 id = _sign(dynamicTerms);
        bytes memory sig = _stopSignature(customerKey, id, T, T + 60);
        _expectWrongStatus(id, IConferenceEscrow.Status.Requested);
        escrow.stopBySignature(id, T, T + 60, sig);

        uint256 running = _running();
        sig = _stopSignature(customerKey, running, T + 500, T + 700);
        escrow.stopBySignature(running, T + 500, T + 700, sig);
        _expectWrongStatus(running, IConferenceEscrow.Status.Ended);
        escrow.stopBySignature(running, T + 500, T + 700, sig);
    }

    function test_RevertWhen_StopBySignatureUnknownAgreement() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnknownAgreement.selector, 9));
        escrow.stopBySignature(9, T, T + 60, "");
    }

    // ---- EIP-7702: a customer whose account delegated its code ------------------------------------

    /// Gives the customer's account the code an EIP-7702 authorization leaves (Prague): the delegation
    /// designator 0xef0100 ‖ `implementation`, which makes every call to the account run the delegate's code.
    function _delegate(address implementation) internal {
        vm.setEvmVersion("prague");
        vm.etch(customer, abi.encodePacked(hex"ef0100", implementation));
        assertEq(customer.code.length, 23, "delegation designator");
        (bool ok,) = customer.call{value: 1}("");
        assertTrue(ok, "calls run the delegate's code (its receive)");
    }

    /// Regression (review, EIP-7702): OpenZeppelin's SignatureChecker sends an account with code, and so a
    /// delegated EOA, down the ERC-1271 path; a delegate without ERC-1271 refuses the customer's own key. The
    /// escrow checks the key first.
    function test_WhenCustomerDelegatedCode_Eip7702_OwnKeyStops() public {
        uint256 id = _running();
        _delegate(address(new BatchDelegate()));
        bytes memory sig = _stopSignature(customerKey, id, T + 400, T + 700);
        bytes32 digest = escrow.stopDigest(id, 1, T + 400, T + 700);
        assertTrue(!SignatureChecker.isValidSignatureNow(customer, digest, sig), "OZ's checker alone refuses it");
        vm.prank(stranger);
        escrow.stopBySignature(id, T + 400, T + 700, sig);
        assertEq(escrow.agreementOf(id).endedAt, T + 400, "stopped by the customer's key");
    }

    function test_WhenCustomerDelegatedCode_Eip7702_StopAndSettle() public {
        uint256 id = _running();
        _delegate(address(new RefusingErc1271Delegate()));
        bytes memory sig = _stopSignature(customerKey, id, T + 400, T + 700);
        uint256 before = customer.balance;
        _stopAndSettle(id, 10_000, T + 400, T + 700, sig);
        assertEq(customer.balance - before, DYNAMIC_DEPOSIT - 400 * SECOND_PRICE, "refund pushed to the account");
    }

    function test_RevertWhen_CustomerDelegatedCode_Eip7702_OtherKeySigned() public {
        uint256 id = _running();
        _delegate(address(new BatchDelegate()));
        bytes memory sig = _stopSignature(STRANGER_KEY, id, T + 400, T + 700);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidSignature.selector, id));
        escrow.stopBySignature(id, T + 400, T + 700, sig);
    }
}
