// Amounts are bigint in the token's smallest unit throughout; no floating point near money.

/** 3600000000000000n with 18 decimals → "0.0036": exact, trailing zeros trimmed. */
export function formatUnitsExact(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  const fraction = decimals ? (abs % base).toString().padStart(decimals, '0').replace(/0+$/, '') : '';
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** An amount with its token's symbol: "0.0036 ETH", "3.6 USDC". */
export function formatAmount(value: bigint | string, token: { symbol: string; decimals: number }): string {
  return `${formatUnitsExact(BigInt(value), token.decimals)} ${token.symbol}`;
}

/** An amount for a glance, where the exact figure is a hover away (a `title`): four decimals, or four
 *  significant digits below one whole unit, cut (never rounded up, so it never shows more than there
 *  is), trailing zeros trimmed. 9999996281156172174891n with 18 decimals → "9999.9962",
 *  123456789012345n → "0.0001234", 5n * 10n ** 18n → "5". */
export function formatUnitsShort(value: bigint, decimals: number, digits = 4): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  const fraction = (abs % base).toString().padStart(decimals, '0');
  const leadingZeros = fraction.length - fraction.replace(/^0+/, '').length;
  const kept = fraction.slice(0, whole === 0n ? leadingZeros + digits : digits).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${kept ? `.${kept}` : ''}`;
}

/** `formatUnitsShort` with the token's symbol: "9999.9962 ETH". Pair it with `formatAmount` as the
 *  element's `title`, so the exact figure stays readable. */
export function formatAmountShort(value: bigint | string, token: { symbol: string; decimals: number }): string {
  return `${formatUnitsShort(BigInt(value), token.decimals)} ${token.symbol}`;
}

/** A price per unit raised by a surcharge, exactly: P · (10 000 + bps) / 10 000 has at most four more
 *  decimals than P, so 9 wei + 10% → "0.0000000000000000099 ETH" (what a unit costs before the one
 *  rounding of each whole amount). */
export function formatSurcharged(price: bigint, surchargeBps: number, token: { symbol: string; decimals: number }): string {
  return formatAmount(price * (10_000n + BigInt(surchargeBps)), { symbol: token.symbol, decimals: token.decimals + 4 });
}

/** 9876 → "98.76%", 10000 → "100%". */
export function formatBps(bps: number): string {
  const whole = Math.trunc(bps / 100);
  const rest = bps % 100;
  return rest === 0 ? `${whole}%` : `${whole}.${String(rest).padStart(2, '0').replace(/0$/, '')}%`;
}

/** 3725 → "1 h 2 min 5 s", 600 → "10 min", 0 → "0 s". */
export function formatDuration(totalSeconds: number): string {
  let s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts: string[] = [];
  if (h) parts.push(`${h} h`);
  if (m) parts.push(`${m} min`);
  if (s || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

/** Unix seconds → local date and time. */
export function formatTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** 0x1234…abcd */
export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}
