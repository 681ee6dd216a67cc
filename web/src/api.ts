// The backend's HTTP API, typed. Every non-2xx answer carries `{"error": "<sentence>"}`, thrown as a
// UserError so the page shows the sentence.
import { UserError } from './errors';

/** A refusal from the service: its sentence, and the HTTP status for pages that act on it (401, 403, 409). */
export class ApiError extends UserError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Model = 'fixedPrice' | 'dynamicPrice' | 'timeLimited' | 'flexiblePeriod';
export type Progress = 'idle' | 'signed' | 'deploying' | 'activating' | 'active' | 'undeploying' | 'settling' | 'settled' | 'refunded';

/** A terms version as `GET /api/offers` lists it (amounts are decimal strings in the token's unit). */
export interface Terms {
  id: number;
  offerId: number;
  model: Model;
  tokenId: number;
  price: string;
  maxDuration: number;
  minimumCharge: string;
  /** What signing costs without constraints, for the models whose deposit the terms fix (else null). */
  deposit: string | null;
  regions: number;
  gdpr: boolean;
  open: boolean;
  [more: string]: unknown;
}

/** An agreement as the service records it (`GET /api/agreements`, and inside AgreementView). */
export interface AgreementSummary {
  id: number;
  termsId: number;
  model: Model;
  customer: string;
  tokenId: number;
  price: string;
  deposit: string;
  allowedRegions: number;
  gdpr: boolean;
  duration: number;
  windowFrom: number | null;
  windowTo: number | null;
  chainStatus: string;
  session: number;
  signedAt: number;
  requestedAt: number | null;
  startedAt: number | null;
  endsAt: number | null;
  region: number | null;
  endedAt: number | null;
  charged: string;
  availabilityBps: number | null;
  refund: string | null;
  refundDeferred: boolean | null;
  refundReason: string | null;
  status: Progress;
  transactions: Record<'sign' | 'activate' | 'stop' | 'settle', string | null>;
}

export interface SettledSession {
  [field: string]: unknown;
}

/** `GET /api/agreements/{id}`, and each `progress` event of its stream. */
export interface AgreementView extends AgreementSummary {
  chainTime: number | null;
  joinUrl: string | null;
  conference: { state: string; deployCount: number; probes: number; probesOk: number; [more: string]: unknown };
  participants: { count: number; quality: string; issuedAt: number } | null;
  sessions: SettledSession[];
}

export interface JoinToken {
  token: string;
  joinUrl: string;
  expiresAt: number;
  room: 'local' | 'jitsi';
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(response.status, `The service answered ${response.status} with something that is not JSON.`);
  }
  if (!response.ok) {
    const message = (json as { error?: string } | undefined)?.error;
    throw new ApiError(response.status, message ?? `The service answered ${response.status}.`);
  }
  return json as T;
}

export const api = {
  offers: () => call<Terms[]>('GET', '/api/offers'),
  agreement: (id: number) => call<AgreementView>('GET', `/api/agreements/${id}`),
  agreements: (query: { customer?: string; limit?: number; before?: number } = {}) => {
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
    return call<AgreementSummary[]>('GET', `/api/agreements${params.size ? `?${params}` : ''}`);
  },
  probes: (id: number) => call<unknown>('GET', `/api/agreements/${id}/probes`),
  siweNonce: () => call<{ nonce: string; domain: string; uri: string; chainId: number }>('POST', '/api/siwe/nonce'),
  siweVerify: (message: string, signature: string) => call<{ address: string; expiresAt: number }>('POST', '/api/siwe/verify', { message, signature }),
  session: () => call<{ address: string; expiresAt: number }>('GET', '/api/session'),
  signOut: () => call<void>('DELETE', '/api/session'),
  registerParticipants: (id: number, participants: { address: string; region: number }[], quality: 'sd' | 'hd' | 'fullhd') =>
    call<{ count: number; quality: string; issuedAt: number }>('POST', `/api/agreements/${id}/participants`, { participants, quality }),
  joinToken: (id: number) => call<JoinToken>('POST', `/api/agreements/${id}/join-token`, {}),
  stop: (id: number, body: { stoppedAt: number; deadline: number; signature: string }) =>
    call<unknown>('POST', `/api/agreements/${id}/stop`, body),
};

/** Follows an agreement live (`GET /api/agreements/{id}/events`, server-sent events); the browser
 *  reconnects by itself. Returns the function that stops following. */
export function follow(id: number, onView: (view: AgreementView) => void, onUnseen: () => void): () => void {
  const source = new EventSource(`/api/agreements/${id}/events`);
  source.addEventListener('progress', (event) => onView(JSON.parse((event as MessageEvent<string>).data) as AgreementView));
  source.addEventListener('unseen', () => onUnseen());
  return () => source.close();
}
