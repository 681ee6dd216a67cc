// A small typed client of the Janus WebRTC Server's documented API (JSON over its WebSocket transport,
// sub-protocol `janus-protocol`): sessions, plugin handles, messages with JSEP, trickle, keepalives.
// Only what the conference room needs: the VideoRoom plugin, one session per page.
//
// Every request carries the participant's token (Janus signed token, from the backend's join-token
// route); the token is asked for anew while the page runs (`setToken`), because the server refuses a
// request whose token expired, keepalives included.

export interface JanusEvent {
  janus: string;
  transaction?: string;
  session_id?: number;
  sender?: number;
  data?: { id?: number };
  error?: { code: number; reason: string };
  plugindata?: { plugin: string; data: Record<string, unknown> };
  jsep?: RTCSessionDescriptionInit;
}

/** A refusal from Janus: its error code (403 no valid token, 458 no such session, 426 no such room…). */
export class JanusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'JanusError';
  }
}

const REQUEST_TIMEOUT_MS = 10_000;
const KEEPALIVE_MS = 10_000;

interface Pending {
  resolve: (event: JanusEvent) => void;
  reject: (err: Error) => void;
  /** A keepalive's and a trickle's answer is their `ack`; for other requests it only says they arrived. */
  ackAnswers: boolean;
  timer: ReturnType<typeof setTimeout>;
}

/** One Janus session over one WebSocket. `onClosed` runs once when the socket closes or the server
 *  says the session is gone (timed out, destroyed), unless `destroy` closed it. */
export class JanusSession {
  private ws: WebSocket;
  private token: string;
  private next = 0;
  private pending = new Map<string, Pending>();
  private handles = new Map<number, JanusHandle>();
  private keepalive: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  id = 0;

  private constructor(
    ws: WebSocket,
    token: string,
    private readonly onClosed: (reason: string) => void,
  ) {
    this.ws = ws;
    this.token = token;
    ws.addEventListener('message', (event) => this.receive(String(event.data)));
    ws.addEventListener('close', () => this.close('the connection to the conference server closed'));
  }

  /** Opens the WebSocket at `url` and creates a session with `token`. */
  static async open(url: string, token: string, onClosed: (reason: string) => void): Promise<JanusSession> {
    const ws = new WebSocket(url, 'janus-protocol');
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('the conference server cannot be reached')), { once: true });
      ws.addEventListener('close', () => reject(new Error('the conference server cannot be reached')), { once: true });
    });
    const session = new JanusSession(ws, token, onClosed);
    try {
      const created = await session.request({ janus: 'create' });
      session.id = Number(created.data?.id);
    } catch (err) {
      session.destroyQuietly();
      throw err;
    }
    session.keepalive = setInterval(() => {
      session.request({ janus: 'keepalive' }).catch((err: unknown) => {
        if (err instanceof JanusError && (err.code === 458 || err.code === 403)) session.close(`the server ended the session (${err.message})`);
      });
    }, KEEPALIVE_MS);
    return session;
  }

  /** The token to send from now on (a renewed one). */
  setToken(token: string): void {
    this.token = token;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends `body` with a transaction, the token and the session; resolves with its answer. */
  request(body: Record<string, unknown>, handle?: number): Promise<JanusEvent> {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('the conference server connection is closed'));
    const transaction = `t${++this.next}`;
    const message: Record<string, unknown> = { ...body, transaction, token: this.token };
    if (this.id) message.session_id = this.id;
    if (handle !== undefined) message.handle_id = handle;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new Error(`the conference server did not answer ${String(body.janus)} in time`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transaction, { resolve, reject, ackAnswers: body.janus === 'keepalive' || body.janus === 'trickle', timer });
      this.ws.send(JSON.stringify(message));
    });
  }

  /** Attaches a handle to `plugin`. */
  async attach(plugin: string): Promise<JanusHandle> {
    const attached = await this.request({ janus: 'attach', plugin });
    const handle = new JanusHandle(this, Number(attached.data?.id));
    this.handles.set(handle.id, handle);
    return handle;
  }

  forget(handle: JanusHandle): void {
    this.handles.delete(handle.id);
  }

  /** Destroys the session on the server and closes the socket; `onClosed` does not run. */
  destroy(): void {
    if (this.closed) return;
    if (this.id && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ janus: 'destroy', session_id: this.id, transaction: `t${++this.next}`, token: this.token }));
    }
    this.destroyQuietly();
  }

  private destroyQuietly(): void {
    this.closed = true;
    this.stop('left');
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, 'leaving');
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stop(reason);
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    this.onClosed(reason);
  }

  private stop(reason: string): void {
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new Error(reason));
    }
    this.pending.clear();
  }

  private receive(text: string): void {
    let event: JanusEvent;
    try {
      event = JSON.parse(text) as JanusEvent;
    } catch {
      return;
    }
    if (!event || typeof event !== 'object') return;
    const pending = event.transaction ? this.pending.get(event.transaction) : undefined;
    if (pending && (event.janus !== 'ack' || pending.ackAnswers)) {
      this.pending.delete(event.transaction!);
      clearTimeout(pending.timer);
      if (event.janus === 'error') pending.reject(new JanusError(event.error?.code ?? 0, event.error?.reason ?? 'refused'));
      else {
        const data = event.plugindata?.data;
        if (data && typeof data.error_code === 'number') pending.reject(new JanusError(data.error_code, String(data.error ?? 'refused')));
        else pending.resolve(event);
      }
      // An answer with JSEP (attached, updated) is also the handle's to see: handled by the caller.
      return;
    }
    if (event.janus === 'timeout') {
      this.close('the server ended the session (timed out)');
      return;
    }
    if (event.janus === 'ack' || event.janus === 'success') return;
    const handle = event.sender !== undefined ? this.handles.get(event.sender) : undefined;
    handle?.deliver(event);
  }
}

/** A handle on a plugin within a session: messages (with JSEP), trickle candidates, unsolicited events. */
export class JanusHandle {
  /** Unsolicited events of the plugin (`event` with plugin data and maybe JSEP), and the core's
   *  `webrtcup`, `media`, `hangup`, `slowlink`, `detached`. */
  onEvent: (event: JanusEvent) => void = () => {};

  constructor(
    private readonly session: JanusSession,
    readonly id: number,
  ) {}

  /** Sends a plugin request (`body`), with `jsep` if given; resolves with the plugin's answer (an
   *  `event` for asynchronous requests, `success` for synchronous ones), rejects with its error. */
  message(body: Record<string, unknown>, jsep?: RTCSessionDescriptionInit): Promise<JanusEvent> {
    const request: Record<string, unknown> = { janus: 'message', body };
    if (jsep) request.jsep = { type: jsep.type, sdp: jsep.sdp };
    return this.session.request(request, this.id);
  }

  /** Sends an ICE candidate, or that gathering completed (`null`). Failures do not matter: Janus's
   *  half-trickle has its own candidates in its SDP and the connection checks retry. */
  trickle(candidate: RTCIceCandidate | null): void {
    const body = candidate ? { candidate: candidate.toJSON() } : { candidate: { completed: true } };
    this.session.request({ janus: 'trickle', ...body }, this.id).catch(() => {});
  }

  detach(): void {
    this.session.request({ janus: 'detach' }, this.id).catch(() => {});
    this.session.forget(this);
  }

  deliver(event: JanusEvent): void {
    this.onEvent(event);
  }
}
