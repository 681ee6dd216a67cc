// The backend's HTTP API, typed from its OpenAPI document: `web/openapi.json` (what
// `GET /api/openapi.json` serves) is turned into `api-types.ts` by `npm run build` (openapi-typescript),
// so a route, a field or an enum value the page uses and the service no longer has fails the build.
// Every non-2xx answer carries `{"error": "<sentence>"}`, thrown as an ApiError so the page shows it.
import type { components, paths } from './api-types';
import { UserError } from './errors';

/** The document's schemas, by the names the backend gives its types. */
type Schemas = components['schemas'];

/** `T` with some fields narrowed to a subtype of what the document says (an address as viem's `0x…`
 *  type, say): a field `T` lacks, or a type that no longer fits, fails the build. */
export type Refine<T, Narrower extends { [K in keyof T]?: T[K] }> = [Exclude<keyof Narrower, keyof T>] extends [never]
  ? Omit<T, keyof Narrower> & Narrower
  : { error: 'Refine names a field the document does not have'; fields: Exclude<keyof Narrower, keyof T> };

export type Model = Schemas['Model'];
export type Progress = Schemas['Progress'];
/** A terms version as `GET /api/offers` lists it (amounts are decimal strings in the token's unit). */
export type Terms = Schemas['Terms'];
/** An agreement as the service records it (`GET /api/agreements`). */
export type AgreementSummary = Schemas['AgreementSummary'];
/** `GET /api/agreements/{id}`, and each `progress` event of its stream. */
export type AgreementView = Schemas['AgreementView'];
/** One settled conference of an agreement (`AgreementView.sessions`). */
export type SettledSession = Schemas['Session'];
export type JoinToken = Schemas['JoinTokenView'];
export type ProbesView = Schemas['ProbesView'];
/** A monitor's signed availability report of one conference, with the records it commits to. */
export type Report = Schemas['Report'];
export type Quality = Schemas['Quality'];
export type PublicConfig = Schemas['PublicConfig'];
export type TokenInfo = Schemas['TokenInfo'];
export type ContractInfo = Schemas['ContractInfo'];

/** A refusal from the service: its sentence, and the HTTP status for pages that act on it (401, 403, 409). */
export class ApiError extends UserError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// What the document says of one route and method: the request it takes and the answer it gives.
type Method = 'get' | 'post' | 'delete';
type Route = keyof paths;
/** The methods the document lists for `R`. */
type MethodOf<R extends Route> = { [M in Method]: undefined extends paths[R][M] ? never : M }[Method];
type Operation<R extends Route, M extends Method> = NonNullable<paths[R][M]>;
/** The JSON of the operation's success answer (200 or 202), or undefined for a 204. */
type Answer<Op> = Op extends { responses: infer Responses }
  ? {
      [S in keyof Responses]: S extends 200 | 202
        ? Responses[S] extends { content: { 'application/json': infer T } } ? T : never
        : S extends 204 ? undefined : never;
    }[keyof Responses]
  : never;
/** The path parameters (`{id}`), the query and the JSON body, each only where the document has it. */
type Request<Op> = (Op extends { parameters: { path: infer P } } ? { path: P } : { path?: never }) &
  (Op extends { parameters: { query?: infer Q } } ? { query?: Q } : { query?: never }) &
  (Op extends { requestBody: { content: { 'application/json': infer B } } } ? { body: B } : { body?: never });
/** The request argument, optional when the operation needs nothing. */
type RequestArgs<Op> = {} extends Request<Op> ? [request?: Request<Op>] : [request: Request<Op>];

/** A signed order to open a conference from the customer's account (`POST /api/orders`), and where an
 *  order stands (`GET /api/orders/{customer}/{nonce}`: pending, opened with its agreement, or failed with
 *  the reason). Named by their routes, not by the document's schema names. */
export type OrderRequest = Request<Operation<'/api/orders', 'post'>>['body'];
export type OrderView = Answer<Operation<'/api/orders/{customer}/{nonce}', 'get'>>;

async function call<R extends Route, M extends MethodOf<R>>(
  method: M,
  route: R,
  ...[request]: RequestArgs<Operation<R, M>>
): Promise<Answer<Operation<R, M>>> {
  const { path, query, body } = (request ?? {}) as { path?: Record<string, string | number>; query?: Record<string, unknown>; body?: unknown };
  let url: string = route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(path?.[name])));
  const search = new URLSearchParams(Object.entries(query ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
  if (search.size) url += `?${search}`;
  const response = await fetch(url, {
    method: method.toUpperCase(),
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as Answer<Operation<R, M>>;
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(response.status, `The service answered ${response.status} with something that is not JSON.`);
  }
  if (!response.ok) {
    const message = (json as Partial<Schemas['ErrorBody']> | undefined)?.error;
    throw new ApiError(response.status, message ?? `The service answered ${response.status}.`);
  }
  return json as Answer<Operation<R, M>>;
}

export const api = {
  offers: () => call('get', '/api/offers'),
  agreement: (id: number) => call('get', '/api/agreements/{id}', { path: { id } }),
  agreements: (query: { customer?: string; limit?: number; before?: number } = {}) => call('get', '/api/agreements', { query }),
  probes: (id: number) => call('get', '/api/agreements/{id}/probes', { path: { id } }),
  monitorReports: (address: string) => call('get', '/api/monitors/{address}/reports', { path: { address } }),
  siweNonce: () => call('post', '/api/siwe/nonce'),
  siweVerify: (message: string, signature: string) => call('post', '/api/siwe/verify', { body: { message, signature } }),
  session: () => call('get', '/api/session'),
  signOut: () => call('delete', '/api/session'),
  registerParticipants: (id: number, participants: Schemas['ParticipantEntry'][], quality: Quality) =>
    call('post', '/api/agreements/{id}/participants', { path: { id }, body: { participants, quality } }),
  joinToken: (id: number) => call('post', '/api/agreements/{id}/join-token', { path: { id } }),
  stop: (id: number, body: Schemas['StopRequest']) => call('post', '/api/agreements/{id}/stop', { path: { id }, body }),
  submitOrder: (body: OrderRequest) => call('post', '/api/orders', { body }),
  order: (customer: string, nonce: string) => call('get', '/api/orders/{customer}/{nonce}', { path: { customer, nonce } }),
};

/** Follows an agreement live (`GET /api/agreements/{id}/events`, server-sent events); the browser
 *  reconnects by itself. Returns the function that stops following. */
export function follow(id: number, onView: (view: AgreementView) => void, onUnseen: () => void): () => void {
  const source = new EventSource(`/api/agreements/${id}/events`);
  source.addEventListener('progress', (event) => onView(JSON.parse((event as MessageEvent<string>).data) as AgreementView));
  source.addEventListener('unseen', () => onUnseen());
  return () => source.close();
}
