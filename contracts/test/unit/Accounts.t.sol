// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {ConferenceEscrow} from "../../src/ConferenceEscrow.sol";
import {EscrowAnnex} from "../../src/EscrowAnnex.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {Errors} from "../../src/libraries/Errors.sol";
import {CustomerWallet} from "../invariant/CustomerWallet.sol";
import {FeeOnTransferToken} from "../mocks/Tokens.sol";

/// @notice Customer accounts: deposits, withdrawals (the request that waits out ACTIVATION_WINDOW), order
/// nonces, the operator's opening of signed orders (every refusal with its exact error, and nothing changed),
/// and the whole life of an agreement opened from an account, to the wei.
contract AccountsTest is UnitBase {
    uint40 internal constant T = uint40(T0);
    uint256 internal constant WALLET_OWNER_KEY = 7;
    uint256 internal constant STRANGER_KEY = 5;

    /// What an order of each base offer locks: the deposit of the terms' longest conference.
    uint256 internal constant FIXED_LOCK = FIXED_PRICE; // 0.1 ether
    uint256 internal constant DYNAMIC_LOCK = DYNAMIC_DEPOSIT; // 1e12 x 3600 = 3.6e15
    uint256 internal constant MINUTES_LOCK = MINUTE_PRICE * MAX_MINUTES_SECONDS / 60; // 6e13 x 600 = 3.6e16
    uint256 internal constant FLEXIBLE_LOCK = MINIMUM_CHARGE + SECOND_PRICE * MAX_WINDOW; // 1e15 + 8.64e16
    uint256 internal constant USD_LOCK = USD_DEPOSIT; // 360,000

    uint256 internal constant FUNDS = 1 ether;

    // ---- helpers ---------------------------------------------------------------------------------

    function _account(uint8 tokenId) internal view returns (IConferenceEscrow.Account memory) {
        return escrow.accountOf(customer, tokenId);
    }

    function _assertAccount(uint8 tokenId, uint256 free, uint256 locked, string memory what) internal view {
        IConferenceEscrow.Account memory a = _account(tokenId);
        assertEq(a.free, free, string.concat(what, ": free"));
        assertEq(a.locked, locked, string.concat(what, ": locked"));
    }

    /// Funds the ETH account and opens an order of `termsId` (nonce `nonce`, at most its lock).
    function _opened(uint32 termsId, uint256 nonce) internal returns (uint256 id) {
        if (_account(0).free == 0) _depositToAccount(0, FUNDS);
        (uint256 lock,,) = escrow.quote(termsId, 0, false, 0);
        if (escrow.termsOf(termsId).model != IOfferBook.Model.FixedPrice) lock = 1 ether; // maxCost: generous
        id = _openOrder(_order(termsId, lock, nonce));
    }

    /// Opens an order of `termsId` from a funded ETH account and activates it now.
    function _running(uint32 termsId) internal returns (uint256 id) {
        id = _opened(termsId, 1);
        _activate(id);
    }

    function _stopAndSettle(uint256 id, uint16 availabilityBps, uint40 stoppedAt, bytes memory report) internal {
        bytes memory sig = _stopSignature(customerKey, id, stoppedAt, _now() + 60);
        vm.prank(operator);
        escrow.stopAndSettle(id, availabilityBps, EVIDENCE, report, stoppedAt, _now() + 60, sig);
    }

    /// Expects `order` (for the customer) to be refused with `err`, and checks that nothing changed: the
    /// account, the agreement count, the nonce.
    function _expectRefused(IConferenceEscrow.Order memory order, bytes memory sig, address caller, bytes memory err)
        internal
    {
        IConferenceEscrow.Account memory before = _account(0);
        uint256 count = escrow.agreementCount();
        bool used = escrow.orderNonceUsed(customer, order.nonce);
        vm.expectRevert(err);
        vm.prank(caller);
        escrow.openOrder(order, customer, sig);
        IConferenceEscrow.Account memory afterwards = _account(0);
        assertEq(afterwards.free, before.free, "free unchanged");
        assertEq(afterwards.locked, before.locked, "locked unchanged");
        assertEq(escrow.agreementCount(), count, "no agreement");
        assertEq(escrow.orderNonceUsed(customer, order.nonce), used, "nonce unchanged");
    }

    /// The EIP-712 digest of `order` computed here, from the type the README and the interface document, for
    /// the domain of `chainId` and `verifyingContract`.
    function _digest(IConferenceEscrow.Order memory order, uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ConferenceEscrow"),
                keccak256("1"),
                chainId,
                verifyingContract
            )
        );
        bytes32 typeHash = keccak256(
            "Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,uint256 nonce,uint40 deadline)"
        );
        bytes32 structHash = keccak256(
            abi.encode(
                typeHash, order.termsId, order.allowedRegions, order.gdpr, order.maxCost, order.nonce, order.deadline
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function _signDigest(uint256 key, bytes32 digest) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    // ---- depositToAccount ------------------------------------------------------------------------

    function test_WhenDepositEth_FreeRises() public {
        vm.expectEmit();
        emit IConferenceEscrow.Deposited(customer, 0, FUNDS);
        _depositToAccount(0, FUNDS);
        _depositToAccount(0, 1);
        _assertAccount(0, FUNDS + 1, 0, "two deposits");
        assertEq(address(escrow).balance, FUNDS + 1, "escrow holds them");
        assertEq(customer.balance, 1000 ether - FUNDS - 1, "customer paid them");
    }

    function test_WhenDepositStablecoin_ExactAmountPulled() public {
        vm.expectEmit();
        emit IConferenceEscrow.Deposited(customer, usdId, 5e6);
        _depositToAccount(usdId, 5e6);
        _assertAccount(usdId, 5e6, 0, "mUSD");
        _assertAccount(0, 0, 0, "ETH account apart");
        assertEq(usd.balanceOf(address(escrow)), 5e6, "escrow holds it");
        assertEq(usd.balanceOf(customer), USD_MINTED - 5e6, "pulled from the customer");
    }

    function test_RevertWhen_DepositZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAmount.selector, 0));
        _depositToAccount(0, 0);
    }

    function test_RevertWhen_DepositEthValueDiffers() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, FUNDS, FUNDS - 1));
        vm.prank(customer);
        escrow.depositToAccount{value: FUNDS - 1}(0, FUNDS);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, FUNDS, 0));
        vm.prank(customer);
        escrow.depositToAccount(0, FUNDS);
    }

    function test_RevertWhen_DepositStablecoinWithEth() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongDeposit.selector, 0, 1));
        vm.prank(customer);
        escrow.depositToAccount{value: 1}(usdId, 5e6);
    }

    function test_RevertWhen_DepositUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidToken.selector, address(0)));
        _depositToAccount(usdId + 1, 5e6);
    }

    function test_RevertWhen_DepositTokenDeliversLess() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        vm.prank(admin);
        uint8 feeId = escrow.addToken(address(fee));
        fee.mint(customer, 1000);
        vm.prank(customer);
        fee.approve(address(escrow), 1000);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_UnsupportedToken.selector, address(fee), 1000, 990));
        _depositToAccount(feeId, 1000);
    }

    function test_RevertWhen_DepositOverflowsAccount() public {
        uint256 most = type(uint128).max;
        usd.mint(customer, most);
        _depositToAccount(usdId, most - 10);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidAmount.selector, 11));
        _depositToAccount(usdId, 11);
        _depositToAccount(usdId, 10); // exactly 2^128 - 1
        assertEq(_account(usdId).free, most, "full");
    }

    function test_WhenPaused_DepositAccepted() public {
        vm.prank(admin);
        escrow.setPaused(true);
        _depositToAccount(0, FUNDS);
        assertEq(_account(0).free, FUNDS, "deposits are never paused");
    }

    // ---- requestWithdrawal / completeWithdrawal ---------------------------------------------------

    function test_RevertWhen_CompleteWithoutRequest() public {
        _depositToAccount(0, FUNDS);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoWithdrawalRequested.selector, customer, 0));
        vm.prank(customer);
        escrow.completeWithdrawal(0);
    }

    function test_RevertWhen_CompleteBeforeActivationWindow() public {
        _depositToAccount(0, FUNDS);
        vm.expectEmit();
        emit IConferenceEscrow.WithdrawalRequested(customer, 0, FUNDS, T + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        IConferenceEscrow.Account memory a = _account(0);
        assertEq(a.withdrawal, FUNDS, "requested");
        assertEq(a.withdrawalAt, T, "when");
        vm.warp(T + ACTIVATION_WINDOW - 1);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WithdrawalNotDue.selector, customer, 0, T + ACTIVATION_WINDOW)
        );
        vm.prank(customer);
        escrow.completeWithdrawal(0);

        vm.warp(T + ACTIVATION_WINDOW);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AccountWithdrawn(customer, 0, FUNDS);
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS, "paid at the due time");
        a = _account(0);
        assertEq(a.free, 0, "free");
        assertEq(a.withdrawal, 0, "request cleared");
        assertEq(a.withdrawalAt, 0, "request time cleared");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    function test_WhenRequestBelowFree_PaysRequested() public {
        _depositToAccount(usdId, 5e6);
        vm.prank(customer);
        escrow.requestWithdrawal(usdId, 2e6);
        vm.warp(T + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.completeWithdrawal(usdId);
        assertEq(usd.balanceOf(customer), USD_MINTED - 3e6, "2 mUSD back");
        _assertAccount(usdId, 3e6, 0, "the rest stays");
    }

    function test_WhenRequestAboveFree_PaysFree() public {
        _depositToAccount(0, FUNDS);
        vm.prank(customer);
        escrow.requestWithdrawal(0, type(uint128).max);
        vm.warp(T + ACTIVATION_WINDOW);
        uint256 before = customer.balance;
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS, "what was free");
        assertEq(_account(0).withdrawal, 0, "request done");
    }

    function test_WhenLocked_NotWithdrawable() public {
        uint256 id = _opened(dynamicTerms, 1);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.warp(T + ACTIVATION_WINDOW);
        uint256 before = customer.balance;
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS - DYNAMIC_LOCK, "only the free part");
        _assertAccount(0, 0, DYNAMIC_LOCK, "the lock stays");
        assertEq(address(escrow).balance, DYNAMIC_LOCK, "escrow holds the lock");
        assertEq(_status(id), IConferenceEscrow.Status.Requested, "agreement untouched");
    }

    function test_RevertWhen_NothingFree() public {
        _depositToAccount(0, FIXED_LOCK);
        _openOrder(_order(fixedTerms, FIXED_LOCK, 1));
        vm.prank(customer);
        escrow.requestWithdrawal(0, 1);
        vm.warp(T + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NothingToWithdraw.selector, customer, 0));
        vm.prank(customer);
        escrow.completeWithdrawal(0);
    }

    function test_WhenRequestZero_RequestWithdrawn() public {
        _depositToAccount(0, FUNDS);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.expectEmit();
        emit IConferenceEscrow.WithdrawalRequested(customer, 0, 0, 0);
        vm.prank(customer);
        escrow.requestWithdrawal(0, 0);
        assertEq(_account(0).withdrawalAt, 0, "no request");
        vm.warp(T + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoWithdrawalRequested.selector, customer, 0));
        vm.prank(customer);
        escrow.completeWithdrawal(0);
    }

    function test_WhenRequestReplaced_ClockRestarts() public {
        _depositToAccount(0, FUNDS);
        vm.prank(customer);
        escrow.requestWithdrawal(0, 1);
        vm.warp(T + 600);
        vm.prank(customer);
        escrow.requestWithdrawal(0, 2);
        vm.warp(T + ACTIVATION_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_WithdrawalNotDue.selector, customer, 0, T + 600 + ACTIVATION_WINDOW)
        );
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        vm.warp(T + 600 + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(_account(0).free, FUNDS - 2, "the second request's amount");
    }

    /// The withdrawal rule: an order the operator opens while a request waits locks its part first.
    function test_WhenOrderOpenedWhileRequestWaits_LockedBeforeWithdrawal() public {
        _depositToAccount(0, FUNDS);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.warp(T + ACTIVATION_WINDOW - 1);
        uint256 id = _openOrder(_order(fixedTerms, FIXED_LOCK, 1));
        vm.warp(T + ACTIVATION_WINDOW);
        uint256 before = customer.balance;
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS - FIXED_LOCK, "the rest");
        _assertAccount(0, 0, FIXED_LOCK, "the order's lock");
        // Once withdrawn, a later order finds nothing free.
        IConferenceEscrow.Order memory late = _order(fixedTerms, FIXED_LOCK, 2);
        _expectRefused(
            late,
            _signOrder(customerKey, late),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InsufficientBalance.selector, customer, 0, FIXED_LOCK, 0)
        );
        assertEq(_status(id), IConferenceEscrow.Status.Requested, "the opened one goes on");
    }

    /// A withdrawal requested while a conference runs pays what is free; the settlement frees the rest later.
    function test_WhenWithdrawalRequestedWhileConferenceRuns_SettlementFreesTheRest() public {
        uint256 id = _running(dynamicTerms); // locks 3.6e15 of 1 ether, active from T
        vm.warp(T + 100);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.warp(T + 100 + ACTIVATION_WINDOW); // past the conference's end time (T + 3600) too
        uint256 before = customer.balance;
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS - DYNAMIC_LOCK, "free part at once");
        _assertAccount(0, 0, DYNAMIC_LOCK, "still locked while it runs");

        escrow.end(id); // ran its whole hour
        _settle(id, 5000); // below 75%: nothing charged
        _assertAccount(0, DYNAMIC_LOCK, 0, "everything back to free");
        vm.prank(customer);
        escrow.requestWithdrawal(0, DYNAMIC_LOCK);
        vm.warp(block.timestamp + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(customer.balance - before, FUNDS, "everything withdrawn in the end");
        assertEq(address(escrow).balance, 0, "escrow empty");
    }

    function test_WhenPaused_WithdrawalCompletes() public {
        _depositToAccount(0, FUNDS);
        vm.prank(admin);
        escrow.setPaused(true);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.warp(T + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        assertEq(_account(0).free, 0, "withdrawn while paused");
    }

    function test_WhenPaused_LockedComesBackAndIsWithdrawn() public {
        uint256 id = _running(fixedTerms);
        vm.prank(admin);
        escrow.setPaused(true);
        vm.warp(T + 60);
        _stop(id);
        _settle(id, 0);
        vm.prank(customer);
        escrow.requestWithdrawal(0, FUNDS);
        vm.warp(T + 60 + ACTIVATION_WINDOW);
        vm.prank(customer);
        escrow.completeWithdrawal(0);
        _assertAccount(0, 0, 0, "all out while paused");
    }

    // ---- cancelOrders ----------------------------------------------------------------------------

    function test_WhenOrdersCancelled_NoncesUsed() public {
        uint256 mask = (uint256(1) << 3) | (uint256(1) << 255);
        vm.expectEmit();
        emit IConferenceEscrow.OrdersCancelled(customer, 2, mask);
        vm.prank(customer);
        escrow.cancelOrders(2, mask);
        assertTrue(escrow.orderNonceUsed(customer, 2 * 256 + 3), "bit 3 of word 2");
        assertTrue(escrow.orderNonceUsed(customer, 2 * 256 + 255), "bit 255 of word 2");
        assertTrue(!escrow.orderNonceUsed(customer, 2 * 256 + 4), "bit 4 untouched");
        assertTrue(!escrow.orderNonceUsed(customer, 3), "word 0 untouched");
        assertTrue(!escrow.orderNonceUsed(stranger, 2 * 256 + 3), "another customer's untouched");
    }

    function test_RevertWhen_OrderNonceCancelled() public {
        _depositToAccount(0, FUNDS);
        vm.prank(customer);
        escrow.cancelOrders(0, 1 << 7);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 7);
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_OrderNonceUsed.selector, customer, 7)
        );
    }

    // ---- openOrder: refusals ---------------------------------------------------------------------

    function test_RevertWhen_OpenOrderCallerNotOperator() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        bytes memory sig = _signOrder(customerKey, order);
        bytes memory err =
            abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", stranger, OPERATOR_ROLE);
        _expectRefused(order, sig, stranger, err);
        err = abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", customer, OPERATOR_ROLE);
        _expectRefused(order, sig, customer, err);
    }

    function test_RevertWhen_OpenOrderPaused() public {
        _depositToAccount(0, FUNDS);
        vm.prank(admin);
        escrow.setPaused(true);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        _expectRefused(
            order, _signOrder(customerKey, order), operator, abi.encodeWithSelector(Errors.Escrow_Paused.selector)
        );
    }

    function test_RevertWhen_OrderExpired() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        order.deadline = T + 60;
        bytes memory sig = _signOrder(customerKey, order);
        vm.warp(T + 61);
        _expectRefused(
            order, sig, operator, abi.encodeWithSelector(Errors.Escrow_OrderExpired.selector, customer, 1, T + 60)
        );
    }

    function test_WhenOrderAtDeadline_Opened() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        order.deadline = T + 60;
        bytes memory sig = _signOrder(customerKey, order);
        vm.warp(T + 60);
        vm.prank(operator);
        escrow.openOrder(order, customer, sig);
        assertEq(_account(0).locked, FIXED_LOCK, "opened at its deadline");
    }

    function test_RevertWhen_OrderReplayed() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 300);
        bytes memory sig = _signOrder(customerKey, order);
        vm.prank(operator);
        escrow.openOrder(order, customer, sig);
        assertTrue(escrow.orderNonceUsed(customer, 300), "used");
        _expectRefused(
            order, sig, operator, abi.encodeWithSelector(Errors.Escrow_OrderNonceUsed.selector, customer, 300)
        );
        // The same nonce under other terms is the same nonce.
        IConferenceEscrow.Order memory other = _order(dynamicTerms, DYNAMIC_LOCK, 300);
        _expectRefused(
            other,
            _signOrder(customerKey, other),
            operator,
            abi.encodeWithSelector(Errors.Escrow_OrderNonceUsed.selector, customer, 300)
        );
    }

    function test_RevertWhen_OrderSignedByAnother() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        _expectRefused(
            order,
            _signOrder(STRANGER_KEY, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
        _expectRefused(
            order,
            hex"0102",
            operator,
            abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
    }

    function test_RevertWhen_OrderAlteredAfterSigning() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(dynamicTerms, DYNAMIC_LOCK, 1);
        bytes memory sig = _signOrder(customerKey, order);
        order.maxCost = FUNDS; // the operator raises the limit
        _expectRefused(
            order, sig, operator, abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
        order.maxCost = DYNAMIC_LOCK;
        order.termsId = fixedTerms; // or swaps the terms
        _expectRefused(
            order, sig, operator, abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
    }

    /// An order for another escrow (another verifyingContract in the domain) or another chain is refused.
    function test_RevertWhen_OrderSignedForAnotherEscrowOrChain() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        ConferenceEscrow other = new ConferenceEscrow(
            admin, operator, registry, ACTIVATION_WINDOW, SETTLEMENT_WINDOW, VOTING_PERIOD, new EscrowAnnex()
        );
        bytes32 otherDigest = other.orderDigest(order);
        assertTrue(otherDigest != escrow.orderDigest(order), "domains differ");
        _expectRefused(
            order,
            _signDigest(customerKey, otherDigest),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
        _expectRefused(
            order,
            _signDigest(customerKey, _digest(order, block.chainid + 1, address(escrow))),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, customer, 1)
        );
    }

    /// Regression: the order's EIP-712 type is `Order(...)`, as documented (README, interface, the design the
    /// web and backend sign by); the escrow hashed "IConferenceEscrow.Order(...)", which is not a valid EIP-712
    /// struct name, so a wallet signing the documented type was refused.
    function test_WhenOrderDigestQueried_MatchesEip712() public {
        IConferenceEscrow.Order memory order =
            IConferenceEscrow.Order({termsId: 3, allowedRegions: 5, gdpr: true, maxCost: 7, nonce: 11, deadline: 13});
        assertTrue(
            escrow.ORDER_TYPEHASH()
                == keccak256(
                    "Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,uint256 nonce,uint40 deadline)"
                ),
            "type hash"
        );
        assertTrue(escrow.orderDigest(order) == _digest(order, block.chainid, address(escrow)), "EIP-712 digest");
        // A wallet signing the documented type opens the order.
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory real = _order(fixedTerms, FIXED_LOCK, 1);
        bytes memory sig = _signDigest(customerKey, _digest(real, block.chainid, address(escrow)));
        vm.prank(operator);
        escrow.openOrder(real, customer, sig);
    }

    function test_RevertWhen_OrderOverMaxCost() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(dynamicTerms, DYNAMIC_LOCK - 1, 1);
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_OrderOverLimit.selector, DYNAMIC_LOCK, DYNAMIC_LOCK - 1)
        );
        // The surcharge counts: GDPR (+20%) on an order whose limit is the plain price.
        order = _order(dynamicTerms, DYNAMIC_LOCK, 2);
        order.gdpr = true;
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_OrderOverLimit.selector, DYNAMIC_LOCK * 12 / 10, DYNAMIC_LOCK)
        );
    }

    function test_RevertWhen_OrderOverFreeBalance() public {
        _depositToAccount(0, FIXED_LOCK - 1);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InsufficientBalance.selector, customer, 0, FIXED_LOCK, FIXED_LOCK - 1)
        );
        // What is locked by another order is not free.
        _depositToAccount(0, 1);
        _openOrder(_order(fixedTerms, FIXED_LOCK, 2));
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InsufficientBalance.selector, customer, 0, FIXED_LOCK, 0)
        );
        // Nor is another token's balance.
        _depositToAccount(usdId, 5e6);
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_InsufficientBalance.selector, customer, 0, FIXED_LOCK, 0)
        );
    }

    function test_RevertWhen_OrderTermsClosed() public {
        _depositToAccount(0, FUNDS);
        vm.prank(admin);
        book.retireOffer(FIXED_OFFER);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, fixedTerms)
        );
        order.termsId = 999; // never published
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_TermsNotOpen.selector, uint32(999))
        );
    }

    function test_RevertWhen_OrderConstraintsNotMet() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FUNDS, 1);
        order.allowedRegions = uint32(1) << ASIA; // infra does not serve Asia
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_NoRegionAllowed.selector, fixedTerms, uint32(1) << ASIA)
        );
        uint32 termsId = _fixedOfferWithMonitor(); // the monitor is not GDPR-compliant
        order = _order(termsId, FUNDS, 2);
        order.gdpr = true;
        _expectRefused(
            order,
            _signOrder(customerKey, order),
            operator,
            abi.encodeWithSelector(Errors.Escrow_GdprUnavailable.selector, termsId)
        );
    }

    // ---- openOrder: what each model locks --------------------------------------------------------

    function _checkOpened(uint32 termsId, uint256 lock) internal {
        _depositToAccount(0, FUNDS);
        uint256 balance = address(escrow).balance;
        IConferenceEscrow.Order memory order = _order(termsId, lock, 42);
        IConferenceEscrow.Terms memory terms = escrow.termsOf(termsId);
        vm.expectEmit();
        // One conference of at most the terms' maxDuration, whatever the model.
        emit IConferenceEscrow.AgreementSigned(
            1, termsId, customer, lock, terms.model, 0, terms.price, 0, EU_US, false, terms.maxDuration
        );
        vm.expectEmit();
        emit IConferenceEscrow.OrderFilled(1, customer, 42);
        uint256 id = _openOrder(order);
        assertEq(id, 1, "id");
        _assertAccount(0, FUNDS - lock, lock, "locked");
        assertEq(escrow.depositOf(id), lock, "depositOf");
        assertEq(address(escrow).balance, balance, "no money moved");
        assertTrue(escrow.orderNonceUsed(customer, 42), "nonce used");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.status, IConferenceEscrow.Status.Requested, "Requested");
        assertEq(a.customer, customer, "customer");
        assertEq(a.termsId, termsId, "terms");
        assertEq(a.startedAt, T, "requested now");
        assertEq(a.duration, escrow.termsOf(termsId).maxDuration, "one conference of the terms' maxDuration");
        assertEq(escrow.minutesAccountOf(id).deposit, 0, "no minutes account");
        assertEq(escrow.windowOf(id).to, 0, "no window");
    }

    function test_WhenOrderFixedPrice_LocksThePrice() public {
        _checkOpened(fixedTerms, FIXED_LOCK);
    }

    function test_WhenOrderDynamicPrice_LocksPriceTimesMaxDuration() public {
        _checkOpened(dynamicTerms, DYNAMIC_LOCK);
    }

    function test_WhenOrderTimeLimited_LocksPriceTimesMaxMinutes() public {
        _checkOpened(minutesTerms, MINUTES_LOCK);
        (uint256 quoted,,) = escrow.quote(minutesTerms, 0, false, MAX_MINUTES_SECONDS / 60);
        assertEq(quoted, MINUTES_LOCK, "as buying every minute would");
    }

    function test_WhenOrderFlexiblePeriod_LocksMinimumPlusMaxWindow() public {
        _checkOpened(flexibleTerms, FLEXIBLE_LOCK);
        (uint256 quoted,,) = escrow.quote(flexibleTerms, 0, false, MAX_WINDOW);
        assertEq(quoted, FLEXIBLE_LOCK, "as reserving the longest window would");
    }

    function test_WhenOrderConstrained_LockSurcharged() public {
        _depositToAccount(0, FUNDS);
        IConferenceEscrow.Order memory order = _order(flexibleTerms, FUNDS, 1);
        order.gdpr = true;
        order.allowedRegions = EU_ONLY; // +20% + 10%
        uint256 lock = MINIMUM_CHARGE * 13_000 / 10_000 + SECOND_PRICE * MAX_WINDOW * 13_000 / 10_000;
        uint256 id = _openOrder(order);
        assertEq(_account(0).locked, lock, "surcharged minimum + surcharged window");
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        assertEq(a.allowedRegions, EU_ONLY, "narrowed");
        assertEq(a.surchargeBps, 3000, "surcharge");
        assertTrue(a.gdpr, "gdpr");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_RegionNotAllowed.selector, id, US, EU_ONLY));
        escrow.activate(id, US);
    }

    function test_WhenOrderInStablecoin_LocksStablecoin() public {
        _depositToAccount(usdId, 5e6);
        uint256 id = _openOrder(_order(usdTerms, USD_LOCK, 1));
        _assertAccount(usdId, 5e6 - USD_LOCK, USD_LOCK, "mUSD locked");
        _activate(id);
        vm.warp(T + 600);
        _stopAndSettle(id, 10_000, T + 600, "");
        _assertAccount(usdId, 5e6 - 60_000, 0, "600 s x 100 charged");
        assertEq(escrow.earningsOf(infraId, usdId), 36_000, "infra");
        assertEq(escrow.earningsOf(softwareId, usdId), 18_000, "software");
        assertEq(escrow.creditOf(admin, usdId), 6000, "owner");
        assertEq(usd.balanceOf(address(escrow)), 5e6, "escrow holds the account, the earnings and the credit");
    }

    // ---- the life of an account agreement --------------------------------------------------------

    function test_WhenStopAndSettle_RefundBackToFree() public {
        uint256 id = _running(dynamicTerms);
        vm.warp(T + 600);
        vm.recordLogs();
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 6e14, DYNAMIC_LOCK - 6e14, true);
        _stopAndSettle(id, 10_000, T + 600, "");
        assertEq(_endedAtLogged(id), T + 600, "end in the event");
        assertEq(escrow.agreementOf(id).endedAt, 0, "not stored");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "Settled");
        _assertAccount(0, FUNDS - 6e14, 0, "refund credited to free");
        assertEq(escrow.earningsOf(infraId, 0), 3.6e14, "infra 600 x 6e11");
        assertEq(escrow.earningsOf(softwareId, 0), 1.8e14, "software 600 x 3e11");
        assertEq(escrow.creditOf(admin, 0), 6e13, "owner 600 x 1e11");
        assertEq(escrow.creditOf(customer, 0), 0, "no credit: the account holds it");
        assertEq(address(escrow).balance, FUNDS, "nothing left the escrow");
    }

    function test_WhenFixedPriceSettled_WholePriceCharged() public {
        uint256 id = _running(fixedTerms);
        vm.warp(T + 10);
        _stop(id);
        _settle(id, 7500);
        _assertAccount(0, FUNDS - FIXED_PRICE, 0, "price charged");
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), FIXED_SOFTWARE, "software");
        assertEq(escrow.creditOf(admin, 0), FIXED_MARGIN, "owner");
    }

    function test_WhenTimeLimitedStopped_SettledOnceByMinutesUsed() public {
        uint256 id = _running(minutesTerms);
        vm.warp(T + 90);
        _stop(id);
        assertEq(escrow.agreementOf(id).endedAt, T + 90, "ended");
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 10_000, EVIDENCE, 9e13, MINUTES_LOCK - 9e13, true);
        _settle(id, 10_000);
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "one conference: Settled, not Idle");
        _assertAccount(0, FUNDS - 9e13, 0, "90 s at 6e13 a minute");
        assertEq(escrow.earningsOf(infraId, 0), 5.4e13, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), 2.7e13, "software");
        assertEq(escrow.creditOf(admin, 0), 9e12, "owner");
        assertEq(escrow.minutesAccountOf(id).sessions, 0, "no minutes account");
    }

    function test_WhenTimeLimitedRunsToTheEnd_EndAtMaxDuration() public {
        uint256 id = _running(minutesTerms);
        vm.warp(T + MAX_MINUTES_SECONDS - 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NotExpired.selector, id, T + MAX_MINUTES_SECONDS));
        escrow.end(id);
        vm.warp(T + MAX_MINUTES_SECONDS + 500);
        escrow.end(id);
        _settle(id, 10_000);
        _assertAccount(0, FUNDS - MINUTES_LOCK, 0, "the whole lock, no more");
    }

    function test_WhenFlexiblePeriodStopped_MinimumPlusSeconds() public {
        uint256 id = _running(flexibleTerms);
        vm.warp(T + 500);
        _stopAndSettle(id, 10_000, T + 500, "");
        _assertAccount(0, FUNDS - 1.5e15, 0, "minimum 1e15 + 500 x 1e12");
        assertEq(escrow.earningsOf(infraId, 0), 9e14, "infra");
        assertEq(escrow.earningsOf(softwareId, 0), 4.5e14, "software");
        assertEq(escrow.creditOf(admin, 0), 1.5e14, "owner");
    }

    function test_WhenFlexiblePeriodBelow75_NothingCharged() public {
        uint256 id = _running(flexibleTerms);
        vm.warp(T + 500);
        _stopAndSettle(id, 7499, T + 500, "");
        _assertAccount(0, FUNDS, 0, "not even the minimum");
    }

    function test_WhenDeclined_WholeLockBackToFree() public {
        uint256 id = _opened(flexibleTerms, 1);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(
            id, IConferenceEscrow.CancelReason.DeclinedByOperator, FLEXIBLE_LOCK, true
        );
        vm.prank(operator);
        escrow.decline(id);
        assertEq(_status(id), IConferenceEscrow.Status.Refunded, "Refunded");
        _assertAccount(0, FUNDS, 0, "all back");
    }

    /// On an account every model is one conference: a customer's stop before activation calls it off and
    /// frees the whole lock (a direct TimeLimited or FlexiblePeriod agreement would go back to Idle).
    function test_WhenCustomerStopsWhileRequested_WholeLockBack() public {
        uint32[4] memory terms = [fixedTerms, dynamicTerms, minutesTerms, flexibleTerms];
        _depositToAccount(0, FUNDS);
        for (uint256 i; i < 4; ++i) {
            uint256 id = _openOrder(_order(terms[i], FUNDS, i));
            uint256 lock = escrow.depositOf(id);
            vm.expectEmit();
            emit IConferenceEscrow.StartCancelled(id, IConferenceEscrow.CancelReason.CancelledByCustomer, lock, true);
            _stop(id);
            assertEq(_status(id), IConferenceEscrow.Status.Refunded, "Refunded");
            _assertAccount(0, FUNDS, 0, "all back");
        }
    }

    function test_WhenReclaimed_WholeLockBack() public {
        uint256 id = _opened(flexibleTerms, 1);
        vm.warp(T + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_ActivationWindowOpen.selector, id, T + ACTIVATION_WINDOW));
        escrow.reclaim(id);
        vm.warp(T + ACTIVATION_WINDOW + 1);
        vm.expectEmit();
        emit IConferenceEscrow.StartCancelled(
            id, IConferenceEscrow.CancelReason.ActivationTimedOut, FLEXIBLE_LOCK, true
        );
        vm.prank(stranger);
        escrow.reclaim(id);
        _assertAccount(0, FUNDS, 0, "all back, the minimum included");
    }

    function test_WhenSettleOverdue_AnyoneSettles() public {
        uint256 id = _running(dynamicTerms);
        vm.warp(T + 1000);
        _stop(id);
        vm.warp(T + 1000 + SETTLEMENT_WINDOW + 1);
        vm.prank(stranger);
        escrow.settleOverdue(id);
        _assertAccount(0, FUNDS - 1000 * SECOND_PRICE, 0, "full availability without a monitor");
    }

    function test_RevertWhen_AccountAgreementSettledTwice() public {
        uint256 id = _running(dynamicTerms);
        vm.warp(T + 100);
        _stopAndSettle(id, 10_000, T + 100, "");
        _expectWrongStatus(id, IConferenceEscrow.Status.Settled);
        vm.prank(operator);
        escrow.settle(id, 10_000, EVIDENCE, "");
        _assertAccount(0, FUNDS - 100 * SECOND_PRICE, 0, "charged once");
    }

    // ---- monitored terms -------------------------------------------------------------------------

    function test_WhenMonitoredStopAndSettle_ReportDecides() public {
        uint32 termsId = _fixedOfferWithMonitor(); // 0.12 ether
        _depositToAccount(0, FUNDS);
        uint256 id = _openOrder(_order(termsId, 0.12 ether, 1));
        _activate(id);
        vm.warp(T + 300);
        bytes memory forged = _signReport(STRANGER_KEY, id, 1, T, T + 300, 10_000, EVIDENCE);
        bytes memory sig = _stopSignature(customerKey, id, T + 300, T + 400);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        vm.prank(operator);
        escrow.stopAndSettle(id, 10_000, EVIDENCE, forged, T + 300, T + 400, sig);

        bytes memory report = _signReport(MONITOR_KEY, id, 1, T, T + 300, 10_000, EVIDENCE);
        vm.prank(stranger); // the report settles, whoever submits it
        escrow.stopAndSettle(id, 10_000, EVIDENCE, report, T + 300, T + 400, sig);
        _assertAccount(0, FUNDS - 0.12 ether, 0, "price charged");
        assertEq(escrow.earningsOf(monitorId, 0), 0.02 ether, "monitor's component");
    }

    function test_WhenMonitoredOverdue_EverythingBack() public {
        uint32 termsId = _fixedOfferWithMonitor();
        _depositToAccount(0, FUNDS);
        uint256 id = _openOrder(_order(termsId, 0.12 ether, 1));
        _activate(id);
        vm.warp(T + 300);
        _stop(id);
        vm.warp(T + 300 + SETTLEMENT_WINDOW + 1);
        escrow.settleOverdue(id);
        _assertAccount(0, FUNDS, 0, "no report, no charge");
        assertEq(escrow.earningsOf(monitorId, 0), 0, "monitor unpaid");
    }

    function test_WhenMonitoredSettleWithReport_ChargesReportedFigure() public {
        uint32 termsId = _fixedOfferWithMonitor();
        _depositToAccount(0, FUNDS);
        uint256 id = _openOrder(_order(termsId, 0.12 ether, 1));
        _activate(id);
        vm.warp(T + 300);
        _stop(id);
        bytes memory report = _report(id, 7000, EVIDENCE, 0);
        vm.prank(monitor);
        escrow.settle(id, 7000, EVIDENCE, report);
        _assertAccount(0, FUNDS, 0, "below 75%: everything back");
    }

    // ---- a smart-contract wallet's account (ERC-1271) --------------------------------------------

    function test_WhenSmartWalletSignsOrder_Erc1271Accepted() public {
        CustomerWallet wallet = new CustomerWallet(vm.addr(WALLET_OWNER_KEY));
        address who = address(wallet);
        vm.deal(who, FUNDS);
        wallet.exec(address(escrow), abi.encodeCall(escrow.depositToAccount, (0, FUNDS)), FUNDS);
        assertEq(escrow.accountOf(who, 0).free, FUNDS, "deposited");

        IConferenceEscrow.Order memory order = _order(dynamicTerms, DYNAMIC_LOCK, 1);
        bytes memory notOwners = _signOrder(customerKey, order);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidOrderSignature.selector, who, 1));
        vm.prank(operator);
        escrow.openOrder(order, who, notOwners);

        bytes memory owners = _signOrder(WALLET_OWNER_KEY, order);
        vm.prank(operator);
        uint256 id = escrow.openOrder(order, who, owners);
        assertEq(escrow.accountOf(who, 0).locked, DYNAMIC_LOCK, "locked");
        _activate(id);
        vm.warp(T + 600);
        bytes memory sig = _stopSignature(WALLET_OWNER_KEY, id, T + 600, T + 700);
        vm.prank(operator);
        escrow.stopAndSettle(id, 10_000, EVIDENCE, "", T + 600, T + 700, sig);
        // The wallet refuses ETH: nothing is pushed to it, the refund is in its account.
        assertEq(escrow.accountOf(who, 0).free, FUNDS - 6e14, "refund credited to free");
        assertEq(escrow.creditOf(who, 0), 0, "no credit");

        wallet.exec(address(escrow), abi.encodeCall(escrow.requestWithdrawal, (0, FUNDS)), 0);
        vm.warp(T + 600 + ACTIVATION_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_TransferFailed.selector, who, FUNDS - 6e14));
        wallet.exec(address(escrow), abi.encodeCall(escrow.completeWithdrawal, (0)), 0);
        wallet.setAccept(true);
        wallet.exec(address(escrow), abi.encodeCall(escrow.completeWithdrawal, (0)), 0);
        assertEq(who.balance, FUNDS - 6e14, "withdrawn once it accepts");
    }

    // ---- the annex -------------------------------------------------------------------------------

    function test_RevertWhen_AnnexCalledDirectly() public {
        vm.expectRevert(Errors.Escrow_NotThroughEscrow.selector);
        vm.prank(customer);
        annex.depositToAccount{value: 1}(0, 1);
        IConferenceEscrow.Order memory order = _order(fixedTerms, FIXED_LOCK, 1);
        bytes memory sig = _signOrder(customerKey, order);
        vm.expectRevert(Errors.Escrow_NotThroughEscrow.selector);
        vm.prank(operator);
        annex.openOrder(order, customer, sig);
        vm.expectRevert(Errors.Escrow_NotThroughEscrow.selector);
        annex.setPaused(true);
        vm.expectRevert(Errors.Escrow_NotThroughEscrow.selector);
        annex.cancelOrders(0, 1);
        assertEq(address(annex).balance, 0, "the annex holds nothing");
    }
}
