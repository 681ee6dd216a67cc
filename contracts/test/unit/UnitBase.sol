// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {BaseTest} from "../Base.t.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";

/// @notice Shared helpers and the exact figures of the base offers, for the unit tests.
abstract contract UnitBase is BaseTest {
    // Prices of the base offers (components + margin).
    uint256 internal constant FIXED_PRICE = 0.1 ether;
    uint256 internal constant SECOND_PRICE = 1e12; // DynamicPrice and FlexiblePeriod, per second
    uint256 internal constant MINUTE_PRICE = 6e13; // TimeLimited, per minute
    uint256 internal constant USD_PRICE = 100; // usdTerms (DynamicPrice), per second
    uint256 internal constant DYNAMIC_DEPOSIT = SECOND_PRICE * MAX_DURATION; // 3.6e15
    uint256 internal constant USD_DEPOSIT = USD_PRICE * MAX_DURATION; // 360_000
    uint256 internal constant USD_MINTED = 1e12;

    // Offer ids of the base offers (opened in this order by BaseTest.setUp).
    uint32 internal constant FIXED_OFFER = 1;
    uint32 internal constant DYNAMIC_OFFER = 2;
    uint32 internal constant MINUTES_OFFER = 3;
    uint32 internal constant FLEXIBLE_OFFER = 4;
    uint32 internal constant USD_OFFER = 5;

    bytes32 internal constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 internal constant OFFER_ADMIN_ROLE = keccak256("OFFER_ADMIN_ROLE");
    bytes32 internal constant DEFAULT_ADMIN_ROLE = 0x00;

    // ---- offers ----------------------------------------------------------------------------------

    /// A FixedPrice offer of infra, software and the (non-GDPR) monitor: its terms are not GDPR-compliant.
    function _fixedOfferWithMonitor() internal returns (uint32 termsId) {
        termsId = _customOffer(
            IOfferBook.Model.FixedPrice,
            0,
            MAX_DURATION,
            _three(infra, software, monitor),
            _amounts(FIXED_INFRA, FIXED_SOFTWARE, 0.02 ether),
            FIXED_MARGIN,
            0
        );
    }

    // ---- agreements ------------------------------------------------------------------------------

    /// Buys minutes, starts a session and activates it now.
    function _activeMinutes(uint32 minuteCount) internal returns (uint256 id) {
        id = _buyMinutes(minuteCount);
        _start(id);
        _activate(id);
    }

    /// Reserves [now + 100, now + 4100), moves into the window, starts and activates.
    function _activeFlexible() internal returns (uint256 id) {
        id = _reserve(uint40(block.timestamp + 100), uint40(block.timestamp + 4100));
        vm.warp(block.timestamp + 100);
        _start(id);
        _activate(id);
    }

    function _active(uint32 termsId) internal returns (uint256 id) {
        id = _sign(termsId);
        _activate(id);
    }

    // ---- assertions ------------------------------------------------------------------------------

    function _expectUnauthorized(address account, bytes32 role) internal {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role));
    }

    function _expectWrongStatus(uint256 id, IConferenceEscrow.Status status) internal {
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_WrongStatus.selector, id, status));
    }

    function _now() internal view returns (uint40) {
        return uint40(block.timestamp);
    }
}
