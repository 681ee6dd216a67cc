// The conference room of the local orchestrator, on its Janus SFU (the VideoRoom plugin, through
// janus.ts). Every peer connection of the page goes to the server, none to another browser: one to
// publish the camera and microphone (sendonly), one multistream subscription that receives everyone
// else's audio and video (recvonly), renegotiated as people come and go.
//
// The server lets in only holders of a token the backend issued to this address (checked on every
// request); the page renews its token every 5 s (the server's tokens live 15 s), so a participant the
// customer removes is refused within seconds, and when the conference ends the renewal says so. When
// the server goes away (the conference was brought back after a crash, or the network dropped), the
// page reconnects by itself with a fresh token, for as long as the agreement is running.
import { ApiError } from './api';
import { h, replace, showError, showNotice } from './dom';
import { shortAddress } from './format';
import { JanusError, type JanusEvent, type JanusHandle, JanusSession } from './janus';

/** A pass to the conference: the token, the server's WebSocket API, when the token expires. */
export interface Pass {
  token: string;
  joinUrl: string;
  expiresAt: number;
}

export interface RoomOptions {
  /** The participant's address (its display name in the room). */
  me: string;
  pass: Pass;
  /** A fresh pass (`POST /api/agreements/{id}/join-token`): throws the service's refusal. */
  renew: () => Promise<Pass>;
  /** Whether the agreement still runs (to tell a conference being brought back from one that ended). */
  running: () => Promise<boolean>;
  /** Runs when the participant left, or was removed, or the conference ended. */
  onLeft: () => void;
}

const ROOM = 1;
/** A third of a token's life (15 s, `TOKEN_TTL_SECS` in the backend's orchestrator/janus.rs). */
const RENEW_MS = 5_000;
const RETRY_MS = [500, 1_000, 2_000, 4_000];

interface Feed {
  id: number;
  display: string;
}

interface Tile {
  figure: HTMLElement;
  video: HTMLVideoElement;
  caption: HTMLElement;
  stream: MediaStream;
}

/** What one connection to the server holds; a reconnection makes a new one. */
interface Connection {
  session: JanusSession;
  joinUrl: string;
  publisher: JanusHandle | null;
  publishing: RTCPeerConnection | null;
  videoSender: RTCRtpSender | null;
  subscriber: JanusHandle | null;
  receiving: RTCPeerConnection | null;
  myId: number;
  privateId: number;
  /** Publishers the subscription asked for, and which of its mids carries which feed. */
  subscribed: Set<number>;
  mids: Map<string, number>;
  /** The subscription's negotiations, one at a time. */
  queue: Promise<void>;
}

type Data = Record<string, unknown>;

const label = (name: string | null | undefined) => (name ? (/^0x[0-9a-fA-F]{40}$/.test(name) ? shortAddress(name) : name.slice(0, 64)) : 'Participant');
const feedsOf = (value: unknown): Feed[] =>
  Array.isArray(value)
    ? value.filter((p): p is Data => Boolean(p) && typeof p === 'object').map((p) => ({ id: Number(p.id), display: String(p.display ?? '') }))
    : [];

/** Opens the room inside `root`; returns the function that leaves it. */
export function mountRoom(root: HTMLElement, options: RoomOptions): () => void {
  const { me } = options;
  const state = {
    pass: options.pass,
    connection: null as Connection | null,
    leaving: false,
    reconnecting: false,
    reconnects: 0,
    local: null as MediaStream | null,
    mic: null as MediaStreamTrack | null,
    cam: null as MediaStreamTrack | null,
    screen: null as MediaStreamTrack | null,
    localTile: null as Tile | null,
    /** Everyone in the room but me, by their id in the room. */
    people: new Map<number, string>(),
    /** Remote video tiles, by publisher id. */
    tiles: new Map<number, Tile>(),
    renewTimer: null as ReturnType<typeof setInterval> | null,
  };

  const mute = h('button', { type: 'button', id: 'mute', 'data-testid': 'mute' });
  const camera = h('button', { type: 'button', id: 'camera', 'data-testid': 'camera' });
  const share = h('button', { type: 'button', id: 'share', 'data-testid': 'share' });
  const leaveButton = h('button', { type: 'button', id: 'leave', 'data-testid': 'leave', class: 'danger' }, 'Leave');
  const videos = h('div', { id: 'videos', class: 'videos', 'data-testid': 'videos' });
  const list = h('ul', { id: 'participants', class: 'participants', 'data-testid': 'participants' });
  const section = h(
    'section',
    { class: 'room-layout', id: 'room', 'data-testid': 'room', 'data-state': 'connecting', 'data-reconnects': 0, 'aria-label': 'Conference room' },
    h('div', { class: 'controls row', role: 'toolbar', 'aria-label': 'Your camera, microphone and screen' }, mute, camera, share, leaveButton),
    videos,
    h('aside', {}, h('h2', {}, 'In the room'), list),
  );
  replace(root, section);

  const setState = (value: 'connecting' | 'connected' | 'reconnecting' | 'left') => {
    section.dataset.state = value;
    section.dataset.reconnects = String(state.reconnects);
  };
  const currentVideo = () => state.screen ?? state.cam ?? null;
  const play = (video: HTMLVideoElement) => void video.play().catch(() => {});

  function makeTile(name: string, local: boolean, feed: number | null): Tile {
    const video = h('video', { autoplay: true, playsinline: true, muted: local, 'aria-label': `Video of ${name}` });
    video.muted = local; // never play our own microphone back
    const caption = h('figcaption', {}, name);
    const figure = h('figure', { class: local ? 'tile local' : 'tile no-video', 'data-feed-id': feed, 'data-placeholder': local ? null : 'No video' }, video, caption);
    return { figure, video, caption, stream: new MediaStream() };
  }

  function showLocalVideo(): void {
    if (!state.localTile) return;
    const track = currentVideo();
    const { video, figure } = state.localTile;
    figure.classList.toggle('sharing', Boolean(state.screen));
    figure.classList.toggle('no-video', !(state.screen || state.cam?.enabled));
    figure.dataset.placeholder = state.cam ? 'Your camera is off' : 'You joined without a camera';
    const shown = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : null;
    if (shown === track) return;
    video.srcObject = track ? new MediaStream([track]) : null;
    if (video.srcObject) play(video);
  }

  function renderParticipants(): void {
    const connected = Boolean(state.connection) && !state.reconnecting;
    const items = connected ? [h('li', { 'data-address': me, 'data-feed-id': state.connection?.myId }, `${label(me)} (you)`)] : [];
    for (const [id, display] of state.people) {
      const tile = state.tiles.get(id);
      items.push(h('li', { 'data-address': display, 'data-feed-id': id, 'data-connection': tile?.figure.dataset.connection ?? 'new' }, label(display)));
    }
    replace(list, ...items);
  }

  function tileOf(feed: number): Tile {
    let tile = state.tiles.get(feed);
    if (!tile) {
      const display = state.people.get(feed) ?? null;
      tile = makeTile(label(display), false, feed);
      if (display) tile.figure.dataset.address = display;
      state.tiles.set(feed, tile);
      videos.append(tile.figure);
    }
    return tile;
  }

  function dropFeed(feed: number): void {
    const tile = state.tiles.get(feed);
    if (tile) {
      tile.video.srcObject = null;
      tile.figure.remove();
      state.tiles.delete(feed);
    }
    state.connection?.subscribed.delete(feed);
  }

  function personJoined(feed: Feed): void {
    if (!Number.isFinite(feed.id) || feed.id === state.connection?.myId) return;
    state.people.set(feed.id, feed.display);
    const tile = state.tiles.get(feed.id);
    if (tile) tile.caption.textContent = label(feed.display);
    renderParticipants();
  }

  function personLeft(id: number): void {
    state.people.delete(id);
    dropFeed(id);
    renderParticipants();
  }

  // --- the subscription: everyone else's media on one peer connection -------------------------------

  /** Answers an offer of the subscription (its first, or a renegotiation after an update). */
  async function acceptOffer(connection: Connection, event: JanusEvent): Promise<void> {
    const data = event.plugindata?.data ?? {};
    if (Array.isArray(data.streams)) {
      for (const stream of data.streams as Data[]) {
        if (typeof stream.mid === 'string' && typeof stream.feed_id === 'number') connection.mids.set(stream.mid, stream.feed_id);
      }
    }
    if (!event.jsep || event.jsep.type !== 'offer') return;
    let pc = connection.receiving;
    if (!pc) {
      pc = new RTCPeerConnection({ iceServers: [] });
      connection.receiving = pc;
      const handle = connection.subscriber!;
      pc.onicecandidate = (e) => handle.trickle(e.candidate);
      pc.ontrack = (e) => {
        const feed = connection.mids.get(e.transceiver.mid ?? '');
        if (feed === undefined || state.connection !== connection) return;
        const tile = tileOf(feed);
        for (const old of tile.stream.getTracks().filter((t) => t.kind === e.track.kind)) tile.stream.removeTrack(old);
        tile.stream.addTrack(e.track);
        if (tile.video.srcObject !== tile.stream) tile.video.srcObject = tile.stream;
        play(tile.video);
        if (e.track.kind === 'video') {
          const track = e.track;
          const update = () => tile.figure.classList.toggle('no-video', track.muted || track.readyState === 'ended');
          track.addEventListener('mute', update);
          track.addEventListener('unmute', update);
          track.addEventListener('ended', update);
          update();
        }
      };
      pc.onconnectionstatechange = () => {
        for (const tile of state.tiles.values()) tile.figure.dataset.connection = pc!.connectionState;
        renderParticipants();
        if (pc!.connectionState === 'failed') lost('the media connection to the conference server failed');
      };
    }
    await pc.setRemoteDescription(event.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await connection.subscriber!.message({ request: 'start', room: ROOM }, pc.localDescription!);
  }

  /** Subscribes to `feeds` (publishers not yet received), one negotiation at a time. */
  function subscribe(connection: Connection, feeds: Feed[]): void {
    const wanted = feeds.filter((f) => Number.isFinite(f.id) && f.id !== connection.myId && !connection.subscribed.has(f.id));
    if (!wanted.length) return;
    for (const feed of wanted) connection.subscribed.add(feed.id);
    const streams = wanted.map((f) => ({ feed: f.id }));
    connection.queue = connection.queue
      .then(async () => {
        if (state.connection !== connection) return;
        if (!connection.subscriber) {
          const handle = await connection.session.attach('janus.plugin.videoroom');
          connection.subscriber = handle;
          handle.onEvent = (event) => {
            if (event.jsep) connection.queue = connection.queue.then(() => acceptOffer(connection, event)).catch(() => {});
            if (event.janus === 'hangup') lost('the conference server hung up the media');
          };
          const answer = await handle.message({ request: 'join', ptype: 'subscriber', room: ROOM, private_id: connection.privateId, streams, use_msid: false });
          await acceptOffer(connection, answer);
        } else {
          const answer = await connection.subscriber.message({ request: 'subscribe', streams });
          await acceptOffer(connection, answer);
        }
      })
      .catch((err: unknown) => {
        for (const feed of wanted) connection.subscribed.delete(feed.id);
        if (state.connection === connection && connection.session.isOpen) showNotice(`Someone’s video could not be received (${(err as Error)?.message ?? err}).`);
      });
  }

  // --- publishing: my camera and microphone on one peer connection ---------------------------------

  async function publish(connection: Connection): Promise<void> {
    if (!state.mic && !state.cam) return;
    const pc = new RTCPeerConnection({ iceServers: [] });
    connection.publishing = pc;
    const handle = connection.publisher!;
    pc.onicecandidate = (e) => handle.trickle(e.candidate);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') lost('the media connection to the conference server failed');
    };
    const streams = state.local ? [state.local] : [];
    if (state.mic) pc.addTransceiver(state.mic, { direction: 'sendonly', streams });
    // Always a video line, so that sharing the screen later is a replaceTrack.
    connection.videoSender = pc.addTransceiver(currentVideo() ?? 'video', { direction: 'sendonly', streams }).sender;
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await handle.message({ request: 'publish', display: me }, pc.localDescription!);
    if (!answer.jsep) throw new Error('the conference server sent no answer to the published media');
    await pc.setRemoteDescription(answer.jsep);
  }

  function onPublisherEvent(connection: Connection, event: JanusEvent): void {
    if (event.janus === 'hangup') return lost('the conference server hung up the media');
    const data = event.plugindata?.data;
    if (!data || state.connection !== connection) return;
    const publishers = feedsOf(data.publishers);
    for (const feed of publishers) personJoined(feed);
    subscribe(connection, publishers);
    if (data.joining && typeof data.joining === 'object') personJoined(feedsOf([data.joining])[0]);
    if (typeof data.unpublished === 'number') dropFeed(data.unpublished);
    if (typeof data.leaving === 'number') personLeft(data.leaving);
    if (data.videoroom === 'destroyed') lost('the room was closed');
  }

  // --- connecting, reconnecting, renewing --------------------------------------------------------

  async function connect(pass: Pass): Promise<void> {
    const session = await JanusSession.open(pass.joinUrl, pass.token, (reason) => lost(reason));
    const connection: Connection = {
      session,
      joinUrl: pass.joinUrl,
      publisher: null,
      publishing: null,
      videoSender: null,
      subscriber: null,
      receiving: null,
      myId: 0,
      privateId: 0,
      subscribed: new Set(),
      mids: new Map(),
      queue: Promise.resolve(),
    };
    state.connection = connection;
    try {
      const publisher = await session.attach('janus.plugin.videoroom');
      connection.publisher = publisher;
      publisher.onEvent = (event) => onPublisherEvent(connection, event);
      const joined = await publisher.message({ request: 'join', ptype: 'publisher', room: ROOM, display: me });
      const data = joined.plugindata?.data ?? {};
      connection.myId = Number(data.id);
      connection.privateId = Number(data.private_id);
      state.people.clear();
      for (const feed of [...feedsOf(data.attendees), ...feedsOf(data.publishers)]) personJoined(feed);
      renderParticipants();
      await publish(connection);
      subscribe(connection, feedsOf(data.publishers));
    } catch (err) {
      closeConnection();
      throw err;
    }
  }

  function closeConnection(): void {
    const connection = state.connection;
    state.connection = null;
    if (!connection) return;
    connection.publishing?.close();
    connection.receiving?.close();
    connection.session.destroy();
    for (const feed of [...state.tiles.keys()]) dropFeed(feed);
    state.people.clear();
    renderParticipants();
  }

  /** The connection to the server is gone: reconnect, unless the participant is leaving. */
  function lost(reason: string): void {
    if (state.leaving || state.reconnecting) return;
    void reconnect(reason);
  }

  /** Whether `err` (from the join-token route) means this participant may not be here any more. */
  async function refusal(err: unknown): Promise<string | null> {
    if (err instanceof ApiError && err.status === 403) return 'You are no longer registered for this conference: the organiser removed you.';
    if (err instanceof ApiError && err.status === 409 && !(await options.running().catch(() => true))) return 'The conference has ended.';
    return null;
  }

  async function reconnect(reason: string): Promise<void> {
    state.reconnecting = true;
    setState('reconnecting');
    closeConnection();
    showNotice(`The connection to the conference server was lost (${reason}): reconnecting…`);
    for (let attempt = 0; !state.leaving; attempt += 1) {
      try {
        state.pass = await options.renew();
        await connect(state.pass);
        state.reconnecting = false;
        state.reconnects += 1;
        setState('connected');
        renderParticipants();
        showNotice('Reconnected to the conference.');
        return;
      } catch (err) {
        const why = await refusal(err);
        if (why) return end(why);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
    }
  }

  async function renewPass(): Promise<void> {
    if (state.leaving || state.reconnecting) return;
    try {
      const pass = await options.renew();
      state.pass = pass;
      const connection = state.connection;
      if (!connection) return;
      if (pass.joinUrl !== connection.joinUrl) return lost('the conference moved to a new server');
      connection.session.setToken(pass.token);
    } catch (err) {
      const why = await refusal(err);
      if (why) end(why);
    }
  }

  // --- controls ------------------------------------------------------------------------------------

  function renderControls(): void {
    const micOn = Boolean(state.mic?.enabled);
    mute.disabled = !state.mic;
    mute.dataset.state = micOn ? 'on' : 'off';
    mute.setAttribute('aria-pressed', String(state.mic ? !micOn : false));
    mute.textContent = !state.mic ? 'No microphone' : micOn ? 'Mute' : 'Unmute';
    const camOn = Boolean(state.cam?.enabled);
    camera.disabled = !state.cam;
    camera.dataset.state = camOn ? 'on' : 'off';
    camera.setAttribute('aria-pressed', String(state.cam ? !camOn : false));
    camera.textContent = !state.cam ? 'No camera' : camOn ? 'Camera off' : 'Camera on';
    const canShare = typeof navigator.mediaDevices?.getDisplayMedia === 'function';
    share.disabled = !canShare;
    share.dataset.state = state.screen ? 'on' : 'off';
    share.setAttribute('aria-pressed', String(Boolean(state.screen)));
    share.textContent = !canShare ? 'No screen sharing' : state.screen ? 'Stop sharing' : 'Share screen';
  }

  async function sendVideo(track: MediaStreamTrack | null): Promise<void> {
    await state.connection?.videoSender?.replaceTrack(track).catch(() => {});
  }

  async function stopSharing(): Promise<void> {
    const track = state.screen;
    if (!track) return;
    state.screen = null;
    track.stop();
    await sendVideo(state.cam);
    showLocalVideo();
    renderControls();
    showNotice(null);
  }

  async function toggleShare(): Promise<void> {
    if (state.screen) return stopSharing();
    let display: MediaStream;
    try {
      display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      const name = (err as Error)?.name;
      if (name === 'NotAllowedError' || name === 'AbortError') showNotice('Screen sharing was cancelled.');
      else showError(`Your screen could not be shared (${(err as Error)?.message ?? name}).`);
      return;
    }
    const track = display.getVideoTracks()[0];
    if (!track) return;
    state.screen = track;
    track.addEventListener('ended', () => {
      if (state.screen === track) void stopSharing();
    });
    await sendVideo(track);
    showLocalVideo();
    renderControls();
    showNotice('You are sharing your screen with everyone in the room.');
  }

  function teardown(): void {
    state.leaving = true;
    if (state.renewTimer) clearInterval(state.renewTimer);
    state.renewTimer = null;
    const publisher = state.connection?.publisher;
    publisher?.message({ request: 'leave' }).catch(() => {});
    closeConnection();
    for (const track of [state.mic, state.cam, state.screen]) track?.stop();
    Object.assign(state, { local: null, mic: null, cam: null, screen: null, localTile: null });
    videos.replaceChildren();
    setState('left');
    renderParticipants();
  }

  function end(message: string): void {
    if (state.leaving) return;
    teardown();
    showError(message);
    options.onLeft();
  }

  function leave(): void {
    if (state.leaving) return;
    teardown();
    showNotice('You left the room. You can join again while the conference runs.');
    options.onLeft();
  }

  mute.addEventListener('click', () => {
    if (!state.mic) return;
    state.mic.enabled = !state.mic.enabled;
    renderControls();
  });
  camera.addEventListener('click', () => {
    if (!state.cam) return;
    state.cam.enabled = !state.cam.enabled;
    showLocalVideo();
    renderControls();
  });
  share.addEventListener('click', () => void toggleShare());
  leaveButton.addEventListener('click', leave);
  const onPageHide = () => {
    state.leaving = true;
    state.connection?.session.destroy();
  };
  window.addEventListener('pagehide', onPageHide);

  void (async () => {
    if (typeof RTCPeerConnection !== 'function') {
      showError('This browser cannot take part in video calls: use a recent Chrome, Edge, Firefox or Safari.');
      options.onLeft();
      return;
    }
    // Camera and microphone; without them the participant still sees and hears the others.
    try {
      state.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (err) {
      const name = (err as Error)?.name;
      try {
        if (name === 'NotAllowedError' || name === 'SecurityError') throw err;
        state.local = await navigator.mediaDevices.getUserMedia({ audio: true });
        showNotice('No camera could be used (missing or busy), so you joined with your microphone only.');
      } catch {
        showNotice('The camera and microphone could not be used (not allowed, missing or busy): you joined without them and can still see and hear the others.');
      }
    }
    if (state.leaving) return;
    state.mic = state.local?.getAudioTracks()[0] ?? null;
    state.cam = state.local?.getVideoTracks()[0] ?? null;
    state.localTile = makeTile(`${label(me)} (you)`, true, null);
    videos.replaceChildren(state.localTile.figure);
    showLocalVideo();
    renderControls();
    state.renewTimer = setInterval(() => void renewPass(), RENEW_MS);
    try {
      await connect(state.pass);
      setState('connected');
      renderParticipants();
    } catch (err) {
      if (err instanceof JanusError && err.code === 403) {
        // The pass expired on the way: a fresh one, as any reconnection does.
        return void reconnect('the pass expired');
      }
      void reconnect((err as Error)?.message ?? String(err));
    }
  })();

  return () => {
    window.removeEventListener('pagehide', onPageHide);
    teardown();
  };
}
