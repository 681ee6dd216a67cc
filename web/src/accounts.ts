// Customer accounts on the escrow (issue 19): a customer deposits once per token and opens conferences
// from the balance by signing EIP-712 orders, which the operator opens (`openOrder`, in batches). What the
// account page and the offers page's "from my account" share lives here: the account's read, and the
// order's typed data and nonce. The errors the account functions revert with are annex.ts's.
import type { Address } from 'viem';
import { escrowAbi, type Reader } from './chain';
import type { Config } from './config';

/** A customer's account in one token (`accountOf`): free to lock or withdraw, locked by open
 *  conferences, and a withdrawal request (0: none) with the time it was made (chain seconds). */
export interface Account {
  free: bigint;
  locked: bigint;
  withdrawal: bigint;
  withdrawalAt: number;
}

export async function readAccount(reader: Reader, cfg: Config, customer: Address, tokenId: number): Promise<Account> {
  const a = (await reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'accountOf', args: [customer, tokenId] })) as {
    free: bigint; locked: bigint; withdrawal: bigint; withdrawalAt: number | bigint;
  };
  return { free: BigInt(a.free), locked: BigInt(a.locked), withdrawal: BigInt(a.withdrawal), withdrawalAt: Number(a.withdrawalAt) };
}

/** The EIP-712 order a customer signs to open a conference from its account. */
export const ORDER_TYPES = {
  Order: [
    { name: 'termsId', type: 'uint32' },
    { name: 'allowedRegions', type: 'uint32' },
    { name: 'gdpr', type: 'bool' },
    { name: 'maxCost', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint40' },
  ],
} as const;

export interface Order {
  termsId: number;
  allowedRegions: number;
  gdpr: boolean;
  /** The most the order may lock: the page signs exactly the lock (`accountLock`). */
  maxCost: bigint;
  nonce: bigint;
  /** Chain seconds. */
  deadline: number;
}

/** How long a signed order may wait for the operator, in chain seconds. */
export const ORDER_VALID_S = 600;

/** The escrow's EIP-712 domain. */
export function orderDomain(cfg: Config) {
  return { name: 'ConferenceEscrow', version: '1', chainId: cfg.chainId, verifyingContract: cfg.escrow } as const;
}

/** The nonce of the customer's next order. The escrow's nonces are unordered, Permit2's way: nonce =
 *  word · 256 + bit, one bit per order in a word of 256. This browser picks a random word of 248 bits per
 *  customer (kept in localStorage) and counts the bits up in it: up to 256 orders share one storage word,
 *  so opening an order costs the operator a bit flipped in a written word rather than a fresh word (about
 *  17,000 gas less from the second order on), and two browsers of one customer never pick the same nonce.
 *  A nonce the chain already used or cancelled is skipped (`orderNonceUsed`); a nonce is kept as used
 *  from the moment it is handed out, whether the order is then signed or not. */
export async function nextOrderNonce(reader: Reader, cfg: Config, customer: Address): Promise<bigint> {
  const key = nonceKey(cfg, customer);
  let stored: { word: string; next: number } | null = null;
  try {
    stored = JSON.parse(localStorage.getItem(key) ?? 'null') as { word: string; next: number } | null;
  } catch {
    stored = null;
  }
  let word = stored && /^\d+$/.test(stored.word) ? BigInt(stored.word) : null;
  let next = stored?.next ?? 0;
  for (;;) {
    if (word === null || !(next >= 0 && next < 256)) {
      const bytes = crypto.getRandomValues(new Uint8Array(31));
      word = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
      next = 0;
    }
    const nonce = (word << 8n) | BigInt(next);
    next += 1;
    const used = (await reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'orderNonceUsed', args: [customer, nonce] })) as boolean;
    if (used) continue;
    try {
      localStorage.setItem(key, JSON.stringify({ word: word.toString(), next }));
    } catch {
      // No storage (a private window): the nonce still is unused on-chain; the next one is drawn afresh.
    }
    return nonce;
  }
}

function nonceKey(cfg: Config, customer: Address): string {
  return `order-nonces:${cfg.chainId}:${cfg.escrow.toLowerCase()}:${customer.toLowerCase()}`;
}

/** The word this browser draws the customer's order nonces from (see {@link nextOrderNonce}), if any: every
 *  order it signed and the service has not opened yet has its nonce there, so `cancelOrders(word, all bits)`
 *  makes them all unusable. */
export function orderWord(cfg: Config, customer: Address): bigint | null {
  try {
    const stored = JSON.parse(localStorage.getItem(nonceKey(cfg, customer)) ?? 'null') as { word?: string } | null;
    return stored?.word && /^\d+$/.test(stored.word) ? BigInt(stored.word) : null;
  } catch {
    return null;
  }
}

/** Forgets the word once its nonces are cancelled: the next order draws a new one. */
export function forgetOrderWord(cfg: Config, customer: Address): void {
  try {
    localStorage.removeItem(nonceKey(cfg, customer));
  } catch {
    // No storage: nothing was kept.
  }
}
