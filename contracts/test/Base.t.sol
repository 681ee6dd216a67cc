// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {DynamicPriceEscrow} from "../src/DynamicPriceEscrow.sol";
import {IDynamicPriceEscrow} from "../src/interfaces/IDynamicPriceEscrow.sol";

/// @notice The forge cheatcodes these tests use (forge-std cannot be installed here; forge has them built in).
interface Vm {
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function deal(address account, uint256 balance) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit() external;
    function addr(uint256 privateKey) external returns (address);
    function label(address account, string calldata name) external;
    function assume(bool condition) external pure;
}

/// @notice The project's own assertions and shared defaults: the escrow with an owner and an operator,
/// one published offer, and funded customers.
abstract contract BaseTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint64 internal constant ACTIVATION_WINDOW = 1 hours;
    uint64 internal constant SETTLEMENT_WINDOW = 1 days;
    uint128 internal constant PRICE = 1e12; // wei per second
    uint64 internal constant MAX_DURATION = 3600;
    uint256 internal constant DEPOSIT = uint256(PRICE) * MAX_DURATION;
    uint256 internal constant T0 = 1_800_000_000;

    DynamicPriceEscrow internal escrow;
    address internal owner;
    address internal operator;
    address internal provider;
    address internal customer;
    address internal stranger;
    uint256 internal offerId;

    function setUp() public virtual {
        vm.warp(T0);
        owner = _account(1, "owner");
        operator = _account(2, "operator");
        provider = _account(3, "provider");
        customer = _account(4, "customer");
        stranger = _account(5, "stranger");
        escrow = new DynamicPriceEscrow(owner, operator, ACTIVATION_WINDOW, SETTLEMENT_WINDOW);
        vm.prank(owner);
        offerId = escrow.publishOffer(provider, PRICE, MAX_DURATION);
        vm.deal(customer, 100 ether);
    }

    function _account(uint256 key, string memory name) internal returns (address account) {
        account = vm.addr(key);
        vm.label(account, name);
    }

    // ---- agreement steps -------------------------------------------------------------------------

    function _sign() internal returns (uint256 id) {
        vm.prank(customer);
        id = escrow.sign{value: DEPOSIT}(offerId);
    }

    function _signAndActivate() internal returns (uint256 id) {
        id = _sign();
        vm.prank(operator);
        escrow.activate(id);
    }

    /// Signs, activates at the current time, and stops `used` seconds later.
    function _ended(uint256 used) internal returns (uint256 id) {
        id = _signAndActivate();
        vm.warp(block.timestamp + used);
        vm.prank(customer);
        escrow.stop(id);
    }

    function _status(uint256 id) internal view returns (IDynamicPriceEscrow.Status) {
        return escrow.getAgreement(id).status;
    }

    // ---- assertions ------------------------------------------------------------------------------

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", _str(a), " != ", _str(b)));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(IDynamicPriceEscrow.Status a, IDynamicPriceEscrow.Status b, string memory what) internal pure {
        assertEq(uint256(a), uint256(b), what);
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(what);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        return min + x % (max - min + 1);
    }

    function _str(uint256 v) private pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory digits;
        while (v != 0) {
            digits = abi.encodePacked(bytes1(uint8(48 + v % 10)), digits);
            v /= 10;
        }
        return string(digits);
    }
}

/// @notice A customer that refuses ETH (its refunds must be credited, never block a settlement) and
/// can later accept and withdraw.
contract RefusingCustomer {
    bool public accept;

    function sign(DynamicPriceEscrow escrow, uint256 offerId) external payable returns (uint256) {
        return escrow.sign{value: msg.value}(offerId);
    }

    function stop(DynamicPriceEscrow escrow, uint256 id) external {
        escrow.stop(id);
    }

    function withdraw(DynamicPriceEscrow escrow) external {
        escrow.withdraw();
    }

    function setAccept(bool value) external {
        accept = value;
    }

    receive() external payable {
        require(accept, "refusing");
    }
}

/// @notice A customer whose receive hook burns all the gas it is given.
contract GasGuzzlingCustomer {
    function sign(DynamicPriceEscrow escrow, uint256 offerId) external payable returns (uint256) {
        return escrow.sign{value: msg.value}(offerId);
    }

    function stop(DynamicPriceEscrow escrow, uint256 id) external {
        escrow.stop(id);
    }

    receive() external payable {
        while (true) {}
    }
}

/// @notice A payout address that tries to re-enter `withdraw` when paid.
contract ReentrantProvider {
    DynamicPriceEscrow public escrow;
    bool public reentered;

    function setEscrow(DynamicPriceEscrow escrow_) external {
        escrow = escrow_;
    }

    function withdraw() external {
        escrow.withdraw();
    }

    receive() external payable {
        if (!reentered) {
            reentered = true;
            escrow.withdraw();
        }
    }
}
