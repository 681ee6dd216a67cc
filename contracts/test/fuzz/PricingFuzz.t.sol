// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BaseTest} from "../Base.t.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {Pricing} from "../../src/libraries/Pricing.sol";

/// @notice Properties of the Pricing library on its own, for every model.
contract PricingFuzzTest is BaseTest {
    uint256 internal constant MAX_PRICE = 2 ** 88 - 1;
    uint256 internal constant MAX_DUR = 2 ** 40 - 1;
    /// Both constraint surcharges at their largest (two uint16 basis points).
    uint256 internal constant MAX_SURCHARGE = 2 * (2 ** 16 - 1);

    function setUp() public override {}

    function _model(uint8 m) internal pure returns (IOfferBook.Model) {
        return IOfferBook.Model(m % 4);
    }

    /// surcharged is floor(amount·(10000+bps)/10000): never below the amount, exact on whole units, monotone.
    function testFuzz_surcharged(uint256 amount, uint16 bpsA, uint16 bpsB) public pure {
        amount = bound(amount, 0, MAX_PRICE);
        uint256 a = Pricing.surcharged(amount, bpsA);
        assertEq(a, amount * (10_000 + uint256(bpsA)) / 10_000, "formula");
        assertTrue(a >= amount, "never below the amount");
        assertTrue(a * 10_000 <= amount * (10_000 + uint256(bpsA)), "rounded down");
        assertTrue((a + 1) * 10_000 > amount * (10_000 + uint256(bpsA)), "by less than one");
        assertEq(Pricing.surcharged(amount, 0), amount, "no surcharge, no change");
        assertEq(Pricing.surcharged(amount * 10_000 / 10_000, 10_000), amount * 2, "100% doubles");
        uint256 b = Pricing.surcharged(amount, bpsB);
        if (bpsA <= bpsB) assertTrue(a <= b, "monotone in bps");
        // Surcharges of the two constraints add (the escrow sums them before applying).
        assertEq(
            Pricing.surcharged(amount, uint256(bpsA) + bpsB),
            amount * (10_000 + uint256(bpsA) + bpsB) / 10_000,
            "sum of surcharges"
        );
    }

    /// Below 75% availability nothing is charged, whatever the model and the usage.
    function testFuzz_chargeZeroBelowMinAvailability(
        uint8 m,
        uint256 price,
        uint256 used,
        uint256 minimum,
        uint256 availability
    ) public pure {
        price = bound(price, 0, MAX_PRICE);
        used = bound(used, 0, MAX_DUR);
        minimum = bound(minimum, 0, MAX_PRICE);
        availability = bound(availability, 0, 7499);
        uint256 bps = bound(availability * 17, 0, MAX_SURCHARGE);
        assertEq(Pricing.charge(_model(m), price, bps, used, minimum, availability), 0, "charge below 75%");
    }

    /// At or above 75% the charge follows the model's formula (and does not depend on the availability).
    function testFuzz_chargeFormula(uint8 m, uint256 price, uint256 used, uint256 minimum, uint256 availability)
        public
        pure
    {
        IOfferBook.Model model = _model(m);
        price = bound(price, 0, MAX_PRICE);
        used = bound(used, 0, MAX_DUR);
        minimum = model == IOfferBook.Model.FlexiblePeriod ? bound(minimum, 0, MAX_PRICE) : 0;
        availability = bound(availability, 7500, 10_000);
        // The surcharge is applied to the use as a whole, rounded down once.
        uint256 bps = bound(uint256(keccak256(abi.encode(price, used))), 0, MAX_SURCHARGE);
        uint256 expected;
        if (model == IOfferBook.Model.FixedPrice) expected = price * (10_000 + bps) / 10_000;
        else if (model == IOfferBook.Model.DynamicPrice) expected = price * used * (10_000 + bps) / 10_000;
        else if (model == IOfferBook.Model.TimeLimited) expected = price * used * (10_000 + bps) / 600_000;
        else expected = minimum + price * used * (10_000 + bps) / 10_000;
        uint256 c = Pricing.charge(model, price, bps, used, minimum, availability);
        assertEq(c, expected, "charge formula");
        assertEq(c, Pricing.charge(model, price, bps, used, minimum, 10_000), "independent of availability above 75%");
        assertEq(
            Pricing.charge(model, price, 0, used, minimum, availability),
            model == IOfferBook.Model.FixedPrice
                ? price
                : model == IOfferBook.Model.DynamicPrice
                    ? price * used
                    : model == IOfferBook.Model.TimeLimited ? price * used / 60 : minimum + price * used,
            "no surcharge: the plain formula"
        );
    }

    /// Regression (review, surcharge rounding): a surcharge is never rounded away on a small price per unit.
    /// At 9 units a second a 10% surcharge is worth 0.9 unit a second, 3,240 units an hour: applied to the
    /// hour as a whole it is all charged (floored once), not floor(9 · 1.1) = 9 a second.
    function testFuzz_surchargeNotRoundedAway(uint256 price, uint256 used, uint256 bps) public pure {
        price = bound(price, 1, 1000);
        used = bound(used, 1, 30 days);
        bps = bound(bps, 1, MAX_SURCHARGE);
        uint256 exact = price * used * (10_000 + bps); // the charge × 10,000, exactly
        uint256 c = Pricing.charge(IOfferBook.Model.DynamicPrice, price, bps, used, 0, 10_000);
        assertTrue(c * 10_000 <= exact && exact < (c + 1) * 10_000, "within one unit of the exact charge");
        assertEq(Pricing.charge(IOfferBook.Model.DynamicPrice, 9, 1000, 3600, 0, 10_000), 35_640, "9/s +10%, 1 h");
    }

    /// The charge never exceeds the deposit when the usage stays within the deposit's duration.
    function testFuzz_chargeNeverExceedsDeposit(
        uint8 m,
        uint256 price,
        uint256 duration,
        uint256 used,
        uint256 minimum,
        uint256 availability
    ) public pure {
        IOfferBook.Model model = _model(m);
        price = bound(price, 0, MAX_PRICE);
        duration = bound(duration, 0, MAX_DUR);
        // TimeLimited durations are whole minutes.
        if (model == IOfferBook.Model.TimeLimited) duration = duration / 60 * 60;
        used = bound(used, 0, duration);
        minimum = model == IOfferBook.Model.FlexiblePeriod ? bound(minimum, 0, MAX_PRICE) : 0;
        availability = bound(availability, 0, 10_000);
        uint256 bps = bound(uint256(keccak256(abi.encode(duration, used))), 0, MAX_SURCHARGE);
        uint256 d = Pricing.deposit(model, price, bps, duration, minimum);
        uint256 c = Pricing.charge(model, price, bps, used, minimum, availability);
        assertTrue(c <= d, "charge above deposit");
        if (used == duration && availability >= 7500) assertEq(c, d, "full use charges the whole deposit");
    }

    /// TimeLimited: a deposit of whole minutes is exact, and any sessions that add up to at most the bought
    /// seconds are charged at most the deposit in total (each session rounds down).
    function testFuzz_timeLimitedSessionsNeverExceedDeposit(
        uint256 price,
        uint32 minuteCount,
        uint256[6] memory sessions
    ) public pure {
        price = bound(price, 0, MAX_PRICE);
        minuteCount = uint32(bound(minuteCount, 1, 2 ** 24));
        uint256 duration = uint256(minuteCount) * 60;
        uint256 bps = bound(uint256(keccak256(abi.encode(sessions))), 0, MAX_SURCHARGE);
        uint256 d = Pricing.deposit(IOfferBook.Model.TimeLimited, price, bps, duration, 0);
        assertEq(d, price * minuteCount * (10_000 + bps) / 10_000, "deposit is price per minute x minutes, surcharged");
        uint256 left = duration;
        uint256 total;
        uint256 usedTotal;
        for (uint256 i; i < sessions.length; ++i) {
            uint256 u = bound(sessions[i], 0, left);
            left -= u;
            usedTotal += u;
            total += Pricing.charge(IOfferBook.Model.TimeLimited, price, bps, u, 0, 10_000);
        }
        assertTrue(total <= d, "sessions charged above the deposit");
        uint256 oneSession = price * usedTotal * (10_000 + bps) / 600_000;
        assertTrue(total <= oneSession, "sessions never cost more than one long session");
        // Rounding costs the providers less than one wei per session.
        assertTrue(oneSession - total < sessions.length, "rounding dust per session");
    }

    /// Deposits per model.
    function testFuzz_depositFormula(uint8 m, uint256 price, uint256 duration, uint256 minimum) public pure {
        IOfferBook.Model model = _model(m);
        price = bound(price, 0, MAX_PRICE);
        duration = bound(duration, 0, MAX_DUR);
        minimum = bound(minimum, 0, MAX_PRICE);
        uint256 bps = bound(uint256(keccak256(abi.encode(m, duration))), 0, MAX_SURCHARGE);
        uint256 d = Pricing.deposit(model, price, bps, duration, minimum);
        uint256 scaled = price * duration * (10_000 + bps);
        if (model == IOfferBook.Model.FixedPrice) assertEq(d, price * (10_000 + bps) / 10_000, "fixed");
        else if (model == IOfferBook.Model.DynamicPrice) assertEq(d, minimum + scaled / 10_000, "dynamic");
        else if (model == IOfferBook.Model.TimeLimited) assertEq(d, scaled / 600_000, "minutes");
        else assertEq(d, minimum + scaled / 10_000, "flexible");
    }

    /// The split: each part is floor(amount·cᵢ/P); the parts never exceed the amount, and what is left (the
    /// owner's) is at least its margin's proportional part and exceeds it by less than one wei per provider.
    function testFuzz_shareOfSplit(uint256 amount, uint88[16] memory components, uint8 count, uint88 margin)
        public
        pure
    {
        count = uint8(bound(count, 1, 16));
        amount = bound(amount, 0, 2 ** 160);
        uint256 total = margin;
        for (uint256 i; i < count; ++i) {
            components[i] = uint88(bound(components[i], 1, 2 ** 80));
            total += components[i];
        }
        uint256 sum;
        for (uint256 i; i < count; ++i) {
            uint256 part = Pricing.shareOf(amount, components[i], total);
            assertEq(part, amount * components[i] / total, "part formula");
            assertTrue(part * total <= amount * components[i], "part rounds down");
            sum += part;
        }
        assertTrue(sum <= amount, "parts above the amount");
        uint256 rest = amount - sum;
        uint256 marginPart = amount * margin / total;
        assertTrue(rest >= marginPart, "owner gets at least its margin");
        assertTrue(rest - marginPart <= count, "dust bounded by the number of providers");
        if (margin == 0 && count == 1) assertEq(rest, 0, "single provider, no margin: no dust");
    }
}
