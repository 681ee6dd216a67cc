// Sign-In with Ethereum (EIP-4361): the session the backend's private endpoints take (registering
// participants, join tokens, a provider's settings). The wallet signs a short message naming this site,
// a single-use nonce from the backend and an expiry; the backend checks it and sets an HttpOnly cookie.
import type { Address } from 'viem';
import { createSiweMessage } from 'viem/siwe';
import { api } from './api';
import { config } from './config';
import { signMessage } from './wallet';

/** How long a session lasts: the message's expiration time, this far ahead. */
const SESSION_HOURS = 8;
/** A session closer than this to its end is renewed rather than reused. */
const RENEW_MARGIN_S = 60;

export interface Session {
  address: string;
  expiresAt: number;
}

/** A live session of `address`: the current one if it is that address's and not about to expire,
 *  else a new sign-in (one signature in the wallet). */
export async function ensureSession(address: Address): Promise<Session> {
  try {
    const current = await api.session();
    if (current.address.toLowerCase() === address.toLowerCase() && current.expiresAt > Date.now() / 1000 + RENEW_MARGIN_S) return current;
  } catch {
    // no session (401): sign in below
  }
  return signIn(address);
}

/** Signs in as `address`: nonce, message, personal_sign, verify. */
export async function signIn(address: Address): Promise<Session> {
  const cfg = await config();
  const { nonce } = await api.siweNonce();
  const now = new Date();
  const message = createSiweMessage({
    domain: location.host,
    uri: location.origin,
    address,
    chainId: cfg.chainId,
    nonce,
    version: '1',
    statement: 'Sign in to the conference service.',
    issuedAt: now,
    expirationTime: new Date(now.getTime() + SESSION_HOURS * 3600 * 1000),
  });
  const signature = await signMessage(message);
  return api.siweVerify(message, signature);
}
