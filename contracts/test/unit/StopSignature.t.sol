// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {SmartWallet} from "../mocks/Actors.sol";

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
        vm.prank(operator);
        escrow.stopAndSettle(id, availabilityBps, stoppedAt, deadline, sig);
    }

    // ---- requirements ----------------------------------------------------------------------------

    function test_RevertWhen_StopAndSettleCallerNotOperator() public {
        uint256 id = _running();
        bytes memory sig = _stopSignature(customerKey, id, _now(), _now() + 60);
        _expectUnauthorized(customer, OPERATOR_ROLE);
        vm.prank(customer);
        escrow.stopAndSettle(id, 10_000, _now(), _now() + 60, sig);
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
        assertEq(escrow.agreementOf(id).endedAt, T + 600, "signed time");
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
        emit IConferenceEscrow.AgreementSettled(id, 10_000, 5e14, 3.1e15, false);
        _stopAndSettle(id, 10_000, stoppedAt, deadline, sig);

        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Settled, "settled");
        assertEq(a.endedAt, T + 500, "signed time");
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
        assertEq(escrow.agreementOf(id).endedAt, T + 300, "signed time");
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
        assertEq(escrow.agreementOf(id).endedAt, T + 600, "now");
        assertEq(escrow.earningsOf(infraId, 0), 600 * SECOND_INFRA, "600 seconds paid");
    }

    function test_WhenStoppedAtAfterEndTime_ClampedToEndTime() public {
        uint256 id = _active(dynamicTerms);
        vm.warp(T + 5000);
        bytes memory sig = _stopSignature(customerKey, id, T + 4000, T + 6000);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, DYNAMIC_DEPOSIT, 0, false);
        _stopAndSettle(id, 10_000, T + 4000, T + 6000, sig);
        assertEq(escrow.agreementOf(id).endedAt, T + MAX_DURATION, "end time");
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
        emit IConferenceEscrow.AgreementSettled(id, 10_000, 0, DYNAMIC_DEPOSIT, false);
        _stopAndSettle(id, 10_000, T + 50, T + 700, sig);
        assertEq(escrow.agreementOf(id).endedAt, T + 100, "start");
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
        bytes32 typeHash = keccak256("Stop(uint256 agreementId,uint40 startedAt,uint40 stoppedAt,uint40 deadline)");
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ConferenceEscrow"),
                keccak256("1"),
                block.chainid,
                address(escrow)
            )
        );
        bytes32 structHash = keccak256(abi.encode(typeHash, uint256(1), uint40(2), uint40(3), uint40(4)));
        bytes32 expected = keccak256(abi.encodePacked("\x19\x01", domain, structHash));
        assertTrue(escrow.stopDigest(1, 2, 3, 4) == expected, "EIP-712 digest");
    }
}
