// The contracts' formulas (contracts/src/libraries/Pricing.sol, and the escrow's `_constrain` and
// `_split`), as pure functions over bigint: the one copy every page recomputes figures with (the
// agreement's charge check, the audit, the provider's income). Each rounds exactly where the contract
// does: a surcharge applies to an amount as a whole, rounded down once. `selfCheck` runs them on
// worked examples.
import type { Model } from './api';

/** Basis points in a whole, and the availability below which a conference costs nothing. */
export const BPS = 10_000n;
export const MIN_AVAILABILITY_BPS = 7_500;

/** A terms version's constraint figures, as `termsOf` gives them. */
export interface Constraints {
  regions: number;
  gdprSurchargeBps: number;
  regionSurchargeBps: number;
}

/** `Pricing.surcharged`: ⌊amount · (10 000 + bps) / 10 000⌋. */
export function surcharged(amount: bigint, surchargeBps: number): bigint {
  return (amount * (BPS + BigInt(surchargeBps))) / BPS;
}

/** `_constrain`'s surcharge: GDPR's if required, the region surcharge if the agreement's regions (the
 *  allowed ones the terms serve, as the escrow stores them) are fewer than the terms serve. */
export function surchargeBps(terms: Constraints, regions: number, gdpr: boolean): number {
  return (gdpr ? terms.gdprSurchargeBps : 0) + (regions !== terms.regions ? terms.regionSurchargeBps : 0);
}

/** `Pricing.deposit`, for the terms' price P per unit and the surcharge s, with k = (10 000 + s) / 10 000:
 *  FixedPrice ⌊P · k⌋; TimeLimited ⌊P · seconds · k / 60⌋ (seconds are whole minutes); otherwise
 *  minimum + ⌊P · seconds · k⌋, where the minimum (FlexiblePeriod) is already surcharged. */
export function depositFor(model: Model, price: bigint, surchargeBps: number, duration: bigint, minimumCharge: bigint): bigint {
  const k = BPS + BigInt(surchargeBps);
  if (model === 'fixedPrice') return (price * k) / BPS;
  if (model === 'timeLimited') return (price * duration * k) / (60n * BPS);
  return minimumCharge + (price * duration * k) / BPS;
}

/** What an order locks in its customer's account (`EscrowState._fullDeposit`): the deposit of the terms'
 *  longest conference, whatever the model (an account's conference of any model runs at most the terms'
 *  `maxDuration`): FixedPrice ⌊P · k⌋, DynamicPrice ⌊P · maxDuration · k⌋, TimeLimited
 *  ⌊P · maxDuration · k / 60⌋, FlexiblePeriod ⌊minimum · k⌋ + ⌊P · maxDuration · k⌋. For the first two it is
 *  `quote(termsId, regions, gdpr, 0).deposit`. */
export function accountLock(model: Model, price: bigint, surchargeBps: number, maxDuration: number, minimumCharge: bigint): bigint {
  return depositFor(model, price, surchargeBps, BigInt(maxDuration), model === 'flexiblePeriod' ? surcharged(minimumCharge, surchargeBps) : 0n);
}

/** `Pricing.charge`: nothing below 75 % availability; else what the deposit's formula gives for the
 *  seconds used (FixedPrice the whole surcharged price, FlexiblePeriod the minimum even for none). */
export function chargeFor(model: Model, price: bigint, surchargeBps: number, used: bigint, minimumCharge: bigint, availabilityBps: number): bigint {
  if (availabilityBps < MIN_AVAILABILITY_BPS) return 0n;
  return depositFor(model, price, surchargeBps, used, minimumCharge);
}

/** The minutes a TimeLimited deposit bought: the least n ≥ 1 with ⌊P · n · k⌋ = deposit and n · 60 within
 *  `maxDuration`, or null if no whole number of minutes gives that deposit (no event carries n). */
export function minutesBought(price: bigint, surchargeBps: number, deposit: bigint, maxDuration: number): bigint | null {
  const perMinute = price * (BPS + BigInt(surchargeBps)); // P · k, scaled by BPS
  if (perMinute === 0n) return null;
  // ⌊P · n · k⌋ = d exactly when d · BPS ≤ n · perMinute < (d + 1) · BPS: the least such n is the ceiling.
  let n = (deposit * BPS + perMinute - 1n) / perMinute;
  if (n < 1n) n = 1n;
  if (n * 60n > BigInt(maxDuration) || depositFor('timeLimited', price, surchargeBps, n * 60n, 0n) !== deposit) return null;
  return n;
}

/** `_split`: provider i gets ⌊charge · cᵢ / P⌋ (P the terms' price), the owner the rest (margin and dust). */
export function splitCharge(charge: bigint, terms: { price: bigint; shares: { providerId: number; component: bigint }[] }): { parts: { providerId: number; amount: bigint }[]; owner: bigint } {
  if (charge === 0n || terms.price === 0n) return { parts: terms.shares.map((s) => ({ providerId: s.providerId, amount: 0n })), owner: 0n };
  let rest = charge;
  const parts = terms.shares.map((s) => {
    const amount = (charge * s.component) / terms.price;
    rest -= amount;
    return { providerId: s.providerId, amount };
  });
  return { parts, owner: rest };
}

/** Worked examples of every formula, checked by hand against contracts/README.md; returns the failures
 *  (empty when all hold). The audit page shows the count, and the browser test asserts it. */
export function selfCheck(): string[] {
  const failures: string[] = [];
  const eq = (name: string, got: bigint | number | null, want: bigint | number | null) => {
    if (got !== want) failures.push(`${name}: got ${got}, want ${want}`);
  };
  const terms = { regions: 0b011, gdprSurchargeBps: 2000, regionSurchargeBps: 1000 };
  eq('no surcharge', surchargeBps(terms, 0b011, false), 0);
  eq('gdpr and narrowed', surchargeBps(terms, 0b001, true), 3000);
  eq('surcharged rounds down', surcharged(999n, 3000), 1298n); // 1298.7
  eq('fixed deposit', depositFor('fixedPrice', 10n ** 15n, 0, 3600n, 0n), 10n ** 15n);
  eq('fixed deposit surcharged', depositFor('fixedPrice', 999n, 3000, 3600n, 0n), 1298n);
  eq('dynamic deposit', depositFor('dynamicPrice', 10n ** 12n, 0, 3600n, 0n), 36n * 10n ** 14n);
  // The README's example: 9 units a second and 10 % for an hour; on the unit price ⌊9 · 1.1⌋ = 9 would lose it.
  eq('surcharge on the whole amount', depositFor('dynamicPrice', 9n, 1000, 3600n, 0n), 35_640n);
  eq('time-limited deposit', depositFor('timeLimited', 6n * 10n ** 13n, 0, 600n, 0n), 6n * 10n ** 14n);
  eq('time-limited deposit surcharged', depositFor('timeLimited', 61n, 3000, 420n, 0n), 555n); // 555.1
  eq('minutes bought', minutesBought(61n, 3000, 555n, 3600), 7n);
  eq('minutes bought: no whole number', minutesBought(61n, 3000, 556n, 3600), null);
  eq('minutes bought: beyond the terms', minutesBought(61n, 3000, 555n, 360), null);
  eq('flexible deposit', depositFor('flexiblePeriod', 10n ** 12n, 0, 7200n, 10n ** 15n), 10n ** 15n + 72n * 10n ** 14n);
  eq('flexible deposit surcharged', depositFor('flexiblePeriod', 7n, 3000, 101n, surcharged(1001n, 3000)), 1301n + 919n); // 1301.3 + 919.1
  eq('account lock, fixed', accountLock('fixedPrice', 999n, 3000, 3600, 0n), 1298n);
  eq('account lock, minutes: the longest conference', accountLock('timeLimited', 61n, 3000, 3600, 0n), 4758n); // 61 · 3600 · 1.3 / 60
  eq('account lock, window: surcharged minimum + the longest conference', accountLock('flexiblePeriod', 7n, 3000, 3600, 1001n), 1301n + 32_760n);
  eq('fixed charge', chargeFor('fixedPrice', 10n ** 15n, 0, 5n, 0n, 10_000), 10n ** 15n);
  eq('dynamic charge', chargeFor('dynamicPrice', 10n ** 12n, 0, 601n, 0n, 7_500), 601n * 10n ** 12n);
  eq('dynamic charge surcharged once', chargeFor('dynamicPrice', 10n ** 12n + 1n, 3000, 77n, 0n, 10_000), 100_100_000_000_100n); // not 1 300 000 000 001 × 77
  eq('below 75 %: nothing', chargeFor('dynamicPrice', 10n ** 12n, 3000, 601n, 0n, 7_499), 0n);
  eq('time-limited charge rounds down', chargeFor('timeLimited', 61n, 0, 59n, 0n, 10_000), 59n); // 59.98
  eq('time-limited charge surcharged', chargeFor('timeLimited', 61n, 1000, 59n, 0n, 10_000), 65n); // 65.98
  eq('flexible charge', chargeFor('flexiblePeriod', 10n, 0, 100n, 1000n, 9_000), 2000n);
  eq('flexible below 75 %: not even the minimum', chargeFor('flexiblePeriod', 10n, 0, 100n, 1000n, 0), 0n);
  eq('flexible never started: the minimum', chargeFor('flexiblePeriod', 10n, 2000, 0n, 1200n, 10_000), 1200n);
  const split = splitCharge(1001n, { price: 10n, shares: [{ providerId: 1, component: 6n }, { providerId: 2, component: 3n }] });
  eq('split provider 1', split.parts[0].amount, 600n); // 600.6
  eq('split provider 2', split.parts[1].amount, 300n); // 300.3
  eq('split owner: margin and dust', split.owner, 101n);
  return failures;
}
