// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IOfferBook} from "../interfaces/IOfferBook.sol";

/// @title Pricing
/// @notice The formulas of every pricing model, pure so that tests and auditors can check them alone.
/// Every division rounds down, in the customer's favour; what rounding leaves of a split goes to the owner.
library Pricing {
    /// @notice Basis points in a whole (100%).
    uint256 internal constant BPS = 10_000;

    /// @notice Below this availability a conference is not paid for: the customer gets everything back.
    uint256 internal constant MIN_AVAILABILITY_BPS = 7500;

    /// @notice `amount` raised by `surchargeBps` basis points, rounded down.
    function surcharged(uint256 amount, uint256 surchargeBps) internal pure returns (uint256) {
        return amount * (BPS + surchargeBps) / BPS;
    }

    /// @notice What the customer pays in: FixedPrice the price; DynamicPrice price × seconds; TimeLimited
    /// price per minute × seconds / 60 (seconds are whole minutes, so exact); FlexiblePeriod the minimum
    /// plus price × the window's seconds.
    function deposit(IOfferBook.Model model, uint256 price, uint256 duration, uint256 minimumCharge)
        internal
        pure
        returns (uint256)
    {
        if (model == IOfferBook.Model.FixedPrice) return price;
        if (model == IOfferBook.Model.TimeLimited) return price * duration / 60;
        return minimumCharge + price * duration;
    }

    /// @notice What one conference that ran `used` seconds costs, given the measured availability:
    /// nothing below MIN_AVAILABILITY_BPS; else FixedPrice the price; DynamicPrice price × used;
    /// TimeLimited floor(price per minute × used / 60); FlexiblePeriod the minimum plus price × used.
    /// @dev Never more than {deposit} when `used` ≤ the duration the deposit was computed for.
    function charge(IOfferBook.Model model, uint256 price, uint256 used, uint256 minimumCharge, uint256 availabilityBps)
        internal
        pure
        returns (uint256)
    {
        if (availabilityBps < MIN_AVAILABILITY_BPS) return 0;
        if (model == IOfferBook.Model.FixedPrice) return price;
        if (model == IOfferBook.Model.TimeLimited) return price * used / 60;
        return minimumCharge + price * used;
    }

    /// @notice A provider's part of `amount`: floor(amount × component / total).
    function shareOf(uint256 amount, uint256 component, uint256 total) internal pure returns (uint256) {
        return amount * component / total;
    }
}
