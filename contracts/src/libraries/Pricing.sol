// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IOfferBook} from "../interfaces/IOfferBook.sol";

/// @title Pricing
/// @notice The formulas of every pricing model, pure so that tests and auditors can check them alone.
/// Every division rounds down, in the customer's favour; what rounding leaves of a split goes to the owner.
/// @dev {deposit} and {charge} run unchecked (they are on every signing and settlement): their callers pass a
/// price below 2^88, durations below 2^40, a surcharge below 2^24 basis points and a minimum below 2^113, so
/// every product stays below 2^154 and every sum below 2^155.
library Pricing {
    /// @notice Basis points in a whole (100%).
    uint256 internal constant BPS = 10_000;

    /// @notice Below this availability a conference is not paid for: the customer gets everything back.
    uint256 internal constant MIN_AVAILABILITY_BPS = 7500;

    /// @notice `amount` raised by `surchargeBps` basis points, rounded down.
    function surcharged(uint256 amount, uint256 surchargeBps) internal pure returns (uint256) {
        return amount * (BPS + surchargeBps) / BPS;
    }

    /// @notice What the customer pays in, for the terms' `price` per unit raised by `surchargeBps`:
    /// FixedPrice the surcharged price; DynamicPrice price × seconds; TimeLimited price per minute × seconds
    /// / 60 (seconds are whole minutes); FlexiblePeriod the (surcharged) minimum plus price × the window's
    /// seconds. The surcharge applies to the amount as a whole, rounded down once.
    function deposit(
        IOfferBook.Model model,
        uint256 price,
        uint256 surchargeBps,
        uint256 duration,
        uint256 minimumCharge
    ) internal pure returns (uint256) {
        unchecked {
            if (model == IOfferBook.Model.FixedPrice) return price * (BPS + surchargeBps) / BPS;
            if (model == IOfferBook.Model.TimeLimited) return price * duration * (BPS + surchargeBps) / (60 * BPS);
            return minimumCharge + price * duration * (BPS + surchargeBps) / BPS;
        }
    }

    /// @notice What one conference that ran `used` seconds costs, given the measured availability:
    /// nothing below MIN_AVAILABILITY_BPS; else FixedPrice the surcharged price; DynamicPrice price × used;
    /// TimeLimited price per minute × used / 60; FlexiblePeriod the (surcharged) minimum plus price × used;
    /// each use raised by `surchargeBps` as a whole and rounded down once, so that no surcharge is rounded
    /// away on a small price per unit.
    /// @dev Never more than {deposit} when `used` ≤ the duration the deposit was computed for.
    function charge(
        IOfferBook.Model model,
        uint256 price,
        uint256 surchargeBps,
        uint256 used,
        uint256 minimumCharge,
        uint256 availabilityBps
    ) internal pure returns (uint256) {
        if (availabilityBps < MIN_AVAILABILITY_BPS) return 0;
        unchecked {
            if (model == IOfferBook.Model.FixedPrice) return price * (BPS + surchargeBps) / BPS;
            if (model == IOfferBook.Model.TimeLimited) return price * used * (BPS + surchargeBps) / (60 * BPS);
            return minimumCharge + price * used * (BPS + surchargeBps) / BPS;
        }
    }

    /// @notice A provider's part of `amount`: floor(amount × component / total).
    function shareOf(uint256 amount, uint256 component, uint256 total) internal pure returns (uint256) {
        return amount * component / total;
    }
}
