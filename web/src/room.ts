// The project's own conference room for the local orchestrator: a WebRTC mesh. The room process only
// relays signalling over its WebSocket (`/ws?token=…`, the join token the backend issued); audio and
// video flow directly between the participants' browsers.
//
// Signalling (web/README.md): the room sends `welcome {id, peers: [{id, name}]}`, `peer-joined {id,
// name}`, `peer-left {id}`; the page sends `hello {name}` and `offer`/`answer`/`ice` with `to`, which
// arrive with `from`. Of any two participants the one with the larger peer id (the later one) sends the
// offer, so a newcomer calls everyone already there and two never both offer. Each connection has one
// audio and one video transceiver, so sharing the screen is a `replaceTrack`, with no renegotiation.
import { h, replace, showError, showNotice } from './dom';
import { shortAddress } from './format';

interface Peer {
  id: string;
  name: string | null;
  pc: RTCPeerConnection | null;
  tile: Tile;
  stream: MediaStream;
  pendingIce: RTCIceCandidateInit[];
  videoSender: RTCRtpSender | null;
  connection: RTCPeerConnectionState;
}

interface Tile {
  figure: HTMLElement;
  video: HTMLVideoElement;
  caption: HTMLElement;
}

type Message = { type: string; id?: string; from?: string; name?: string; sdp?: string; candidate?: RTCIceCandidateInit; peers?: { id: string; name?: string }[] };

/** Opens the room at `wsUrl` as `me` inside `root`; returns the function that leaves it. `onLeft` runs
 *  when the participant leaves or the room closes. */
export function mountRoom(root: HTMLElement, wsUrl: string, me: string, onLeft: () => void): () => void {
  const state = {
    ws: null as WebSocket | null,
    myId: null as string | null,
    joined: false,
    leaving: false,
    local: null as MediaStream | null,
    mic: null as MediaStreamTrack | null,
    cam: null as MediaStreamTrack | null,
    screen: null as MediaStreamTrack | null,
    localTile: null as Tile | null,
    peers: new Map<string, Peer>(),
    inbox: Promise.resolve(),
  };
  const label = (name: string | null | undefined) => (name ? (/^0x[0-9a-fA-F]{40}$/.test(name) ? shortAddress(name) : name.slice(0, 64)) : 'Participant');

  const mute = h('button', { type: 'button', id: 'mute', 'data-testid': 'mute' });
  const camera = h('button', { type: 'button', id: 'camera', 'data-testid': 'camera' });
  const share = h('button', { type: 'button', id: 'share', 'data-testid': 'share' });
  const leaveButton = h('button', { type: 'button', id: 'leave', 'data-testid': 'leave', class: 'danger' }, 'Leave');
  const videos = h('div', { id: 'videos', class: 'videos', 'data-testid': 'videos' });
  const list = h('ul', { id: 'participants', class: 'participants', 'data-testid': 'participants' });
  replace(
    root,
    h(
      'section',
      { class: 'room-layout', id: 'room', 'data-testid': 'room', 'aria-label': 'Conference room' },
      h('div', { class: 'controls row', role: 'toolbar', 'aria-label': 'Your camera, microphone and screen' }, mute, camera, share, leaveButton),
      videos,
      h('aside', {}, h('h2', {}, 'In the room'), list),
    ),
  );

  const send = (message: Record<string, unknown>) => {
    if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
  };
  /** Of two participants, the one with the larger id sends the offer. */
  const iCall = (other: string) => {
    const mine = String(state.myId);
    return /^\d+$/.test(mine) && /^\d+$/.test(other) ? BigInt(mine) > BigInt(other) : mine > other;
  };
  const currentVideo = () => state.screen ?? state.cam ?? null;

  function makeTile(name: string, local: boolean, peerId: string | null): Tile {
    const video = h('video', { autoplay: true, playsinline: true, muted: local, 'aria-label': `Video of ${name}` });
    video.muted = local; // never play our own microphone back
    const caption = h('figcaption', {}, name);
    const figure = h('figure', { class: local ? 'tile local' : 'tile', 'data-peer-id': peerId, 'data-placeholder': local ? null : 'No video' }, video, caption);
    return { figure, video, caption };
  }
  const play = (video: HTMLVideoElement) => void video.play().catch(() => {});

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
    const items = state.joined ? [h('li', { 'data-peer-id': state.myId, 'data-address': me }, `${label(me)} (you)`)] : [];
    for (const peer of state.peers.values()) {
      if (peer.name) items.push(h('li', { 'data-peer-id': peer.id, 'data-address': peer.name, 'data-connection': peer.connection }, label(peer.name)));
    }
    replace(list, ...items);
  }

  function updateCaption(peer: Peer): void {
    const suffix: Partial<Record<RTCPeerConnectionState, string>> = { new: ' — connecting…', connecting: ' — connecting…', failed: ' — connection failed', disconnected: ' — connection lost, retrying…' };
    peer.tile.caption.textContent = label(peer.name) + (suffix[peer.connection] ?? '');
    peer.tile.video.setAttribute('aria-label', `Video of ${label(peer.name)}`);
    peer.tile.figure.dataset.connection = peer.connection;
  }

  function ensurePeer(id: string, name?: string): Peer {
    let peer = state.peers.get(id);
    if (!peer) {
      peer = { id, name: name ?? null, pc: null, tile: makeTile(label(name), false, id), stream: new MediaStream(), pendingIce: [], videoSender: null, connection: 'new' };
      state.peers.set(id, peer);
      videos.append(peer.tile.figure);
    } else if (name) {
      peer.name = name;
    }
    updateCaption(peer);
    renderParticipants();
    return peer;
  }

  function removePeer(id: string): void {
    const peer = state.peers.get(id);
    if (!peer) return;
    state.peers.delete(id);
    peer.pc?.close();
    peer.tile.video.srcObject = null;
    peer.tile.figure.remove();
    renderParticipants();
  }

  function createConnection(peer: Peer): RTCPeerConnection {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.onicecandidate = (event) => {
      if (event.candidate) send({ type: 'ice', to: peer.id, candidate: event.candidate.toJSON() });
    };
    pc.ontrack = (event) => {
      const video = peer.tile.video;
      if (event.streams[0]) {
        if (video.srcObject !== event.streams[0]) video.srcObject = event.streams[0];
      } else {
        if (!peer.stream.getTracks().includes(event.track)) peer.stream.addTrack(event.track);
        video.srcObject = peer.stream;
      }
      play(video);
      if (event.track.kind === 'video') {
        // A muted video track carries no frames: the participant has no camera (or shares nothing).
        const track = event.track;
        const update = () => peer.tile.figure.classList.toggle('no-video', track.muted);
        track.addEventListener('mute', update);
        track.addEventListener('unmute', update);
        update();
      }
    };
    pc.onconnectionstatechange = () => {
      peer.connection = pc.connectionState;
      updateCaption(peer);
      renderParticipants();
      if (pc.connectionState === 'failed') showNotice(`The connection to ${label(peer.name)} failed: they may be on a network this room cannot reach.`);
    };
    peer.pc = pc;
    return pc;
  }

  async function call(peer: Peer): Promise<void> {
    if (peer.pc) return;
    const pc = createConnection(peer);
    const streams = state.local ? [state.local] : [];
    pc.addTransceiver(state.mic ?? 'audio', { direction: 'sendrecv', streams });
    peer.videoSender = pc.addTransceiver(currentVideo() ?? 'video', { direction: 'sendrecv', streams }).sender;
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: 'offer', to: peer.id, sdp: pc.localDescription!.sdp });
  }

  async function flushIce(peer: Peer): Promise<void> {
    for (const candidate of peer.pendingIce.splice(0)) await peer.pc!.addIceCandidate(candidate).catch(() => {});
  }

  async function onOffer(from: string, sdp: string): Promise<void> {
    const peer = ensurePeer(from);
    if (peer.pc && peer.pc.signalingState !== 'stable') {
      // Both sides offered (the larger-id rule prevents it): the caller's offer wins.
      if (iCall(peer.id)) return;
      await peer.pc.setLocalDescription({ type: 'rollback' });
    }
    const pc = peer.pc ?? createConnection(peer);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    for (const transceiver of pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      const track = kind === 'audio' ? state.mic : currentVideo();
      if (track) await transceiver.sender.replaceTrack(track);
      if (state.local) transceiver.sender.setStreams(state.local);
      transceiver.direction = 'sendrecv';
      if (kind === 'video') peer.videoSender = transceiver.sender;
    }
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', to: peer.id, sdp: pc.localDescription!.sdp });
    await flushIce(peer);
  }

  async function onAnswer(from: string, sdp: string): Promise<void> {
    const peer = state.peers.get(from);
    if (!peer?.pc || peer.pc.signalingState !== 'have-local-offer') return;
    await peer.pc.setRemoteDescription({ type: 'answer', sdp });
    await flushIce(peer);
  }

  async function onIce(from: string, candidate: RTCIceCandidateInit | undefined): Promise<void> {
    if (!candidate) return;
    const peer = ensurePeer(from);
    if (!peer.pc?.remoteDescription) {
      peer.pendingIce.push(candidate);
      return;
    }
    await peer.pc.addIceCandidate(candidate).catch(() => {});
  }

  async function handle(message: Message): Promise<void> {
    switch (message.type) {
      case 'welcome': {
        state.myId = String(message.id);
        state.joined = true;
        send({ type: 'hello', name: me });
        const others = Array.isArray(message.peers) ? message.peers : [];
        for (const p of others) ensurePeer(String(p.id), p.name);
        renderParticipants();
        for (const p of others) if (iCall(String(p.id))) await call(state.peers.get(String(p.id))!);
        break;
      }
      case 'peer-joined': {
        if (String(message.id) === state.myId) break;
        const peer = ensurePeer(String(message.id), message.name);
        if (iCall(peer.id)) await call(peer);
        break;
      }
      case 'peer-left':
        removePeer(String(message.id));
        break;
      case 'offer':
        if (message.from && typeof message.sdp === 'string') await onOffer(String(message.from), message.sdp);
        break;
      case 'answer':
        if (message.from && typeof message.sdp === 'string') await onAnswer(String(message.from), message.sdp);
        break;
      case 'ice':
        if (message.from) await onIce(String(message.from), message.candidate);
        break;
      default:
        break; // newer rooms may say more
    }
  }

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

  async function replaceVideoEverywhere(track: MediaStreamTrack | null): Promise<void> {
    await Promise.all(
      [...state.peers.values()]
        .filter((peer) => peer.pc && peer.pc.connectionState !== 'closed')
        .map((peer) => {
          const sender = peer.videoSender ?? peer.pc!.getTransceivers().find((t) => t.receiver.track.kind === 'video')?.sender;
          return sender?.replaceTrack(track).catch(() => {});
        }),
    );
  }

  async function stopSharing(): Promise<void> {
    const track = state.screen;
    if (!track) return;
    state.screen = null;
    track.stop();
    await replaceVideoEverywhere(state.cam);
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
    await replaceVideoEverywhere(track);
    showLocalVideo();
    renderControls();
    showNotice('You are sharing your screen with everyone in the room.');
  }

  function teardown(): void {
    const ws = state.ws;
    state.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'leaving');
    for (const id of [...state.peers.keys()]) removePeer(id);
    for (const track of [state.mic, state.cam, state.screen]) track?.stop();
    Object.assign(state, { local: null, mic: null, cam: null, screen: null, localTile: null, joined: false, myId: null, inbox: Promise.resolve() });
    videos.replaceChildren();
    renderParticipants();
  }

  function leave(): void {
    if (state.leaving) return;
    state.leaving = true;
    teardown();
    showNotice('You left the room. You can join again while the conference runs.');
    onLeft();
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
    state.ws?.close(1000, 'leaving');
  };
  window.addEventListener('pagehide', onPageHide);

  void (async () => {
    if (typeof RTCPeerConnection !== 'function') {
      showError('This browser cannot take part in video calls: use a recent Chrome, Edge, Firefox or Safari.');
      onLeft();
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
    state.mic = state.local?.getAudioTracks()[0] ?? null;
    state.cam = state.local?.getVideoTracks()[0] ?? null;
    state.localTile = makeTile(`${label(me)} (you)`, true, null);
    videos.replaceChildren(state.localTile.figure);
    showLocalVideo();
    renderControls();

    const ws = new WebSocket(wsUrl);
    state.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
    });
    ws.addEventListener('message', (event) => {
      let message: Message;
      try {
        message = JSON.parse(String(event.data)) as Message;
      } catch {
        return;
      }
      if (!message || typeof message !== 'object') return;
      state.inbox = state.inbox
        .then(() => handle(message))
        .catch((err) => showNotice(`A message from the room could not be handled (${(err as Error)?.message ?? err}): if someone’s video is missing, leave and join again.`));
    });
    ws.addEventListener('close', () => {
      if (state.ws !== ws || state.leaving) return;
      teardown();
      showError(
        opened
          ? 'The connection to the room was lost: the conference may have ended. Join again to reconnect.'
          : 'The conference room refused the connection or cannot be reached: your pass may have expired, or the conference ended. Join again.',
      );
      onLeft();
    });
  })();

  return () => {
    window.removeEventListener('pagehide', onPageHide);
    state.leaving = true;
    teardown();
  };
}
