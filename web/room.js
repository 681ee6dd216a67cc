// The conference room: a WebRTC mesh. The room server only relays signalling (JSON over /ws on the
// same origin); audio and video flow directly between the participants' browsers.
//
// Who calls whom: of any two participants, the one with the larger peer id (the later one to
// connect) sends the offer. A newcomer therefore calls everyone already in the room, and two people
// joining at the same moment never both send an offer.

const $ = (id) => document.getElementById(id);
const el = {
  title: $('room-title'),
  subtitle: $('room-subtitle'),
  error: $('error'),
  notice: $('notice'),
  lobby: $('lobby'),
  form: $('join-form'),
  name: $('name'),
  join: $('join'),
  room: $('room'),
  mute: $('mute'),
  camera: $('camera'),
  share: $('share'),
  leave: $('leave'),
  videos: $('videos'),
  participants: $('participants'),
};

const state = {
  ws: null,
  myId: null,
  myName: '',
  joined: false, // the server has welcomed us
  leaving: false,
  local: null, // MediaStream from the camera and microphone, or null
  mic: null, // the microphone track
  cam: null, // the camera track
  screen: null, // the screen-sharing track while sharing
  localTile: null,
  peers: new Map(), // id → peer
  inbox: Promise.resolve(), // messages are handled one at a time, in order
};

function showError(message) {
  el.error.textContent = message || '';
}

function showNotice(message) {
  el.notice.textContent = message || '';
}

/** A short sentence out of any error, without a stack trace. */
function reason(err) {
  const text = String(err?.message || err?.name || err || '').split('\n')[0].trim();
  return text.slice(0, 200).replace(/[.\s]*$/, '');
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

/** Of two participants, the one with the larger id sends the offer. */
function iCall(otherId) {
  const mine = String(state.myId);
  const theirs = String(otherId);
  if (/^\d+$/.test(mine) && /^\d+$/.test(theirs)) return BigInt(mine) > BigInt(theirs);
  return mine > theirs;
}

function cleanName(raw) {
  const name = String(raw ?? '').replace(/\s+/g, ' ').trim().slice(0, 64);
  return name || 'Guest';
}

// ---------------------------------------------------------------------------------------------
// Local media.
// ---------------------------------------------------------------------------------------------

async function getLocalMedia() {
  const devices = navigator.mediaDevices;
  if (!devices || typeof devices.getUserMedia !== 'function') {
    return {
      stream: null,
      note: 'This browser gives the page no access to a camera or microphone (it must be opened over HTTPS or on this computer). You joined without them: you can still see and hear the others.',
    };
  }
  try {
    return { stream: await devices.getUserMedia({ audio: true, video: true }), note: '' };
  } catch (err) {
    if (err?.name === 'NotAllowedError' || err?.name === 'SecurityError') {
      return {
        stream: null,
        note: 'Your browser did not allow the camera and microphone, so you joined without them: you can still see and hear the others. Allow them in the browser’s site settings and join again to be seen and heard.',
      };
    }
    try {
      const stream = await devices.getUserMedia({ audio: true });
      return { stream, note: 'No camera could be used (it may be missing or busy in another application), so you joined with your microphone only.' };
    } catch {
      return {
        stream: null,
        note: 'No camera or microphone could be used (they may be missing or busy in another application), so you joined without them: you can still see and hear the others.',
      };
    }
  }
}

function currentVideoTrack() {
  return state.screen || state.cam || null;
}

function makeTile({ label, local = false, peerId = null }) {
  const figure = document.createElement('figure');
  figure.className = local ? 'tile local' : 'tile';
  if (peerId !== null) figure.dataset.peerId = peerId;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true; // never play our own microphone back
    video.setAttribute('muted', '');
  }
  if (!local) figure.dataset.placeholder = 'No video';
  const caption = document.createElement('figcaption');
  caption.textContent = label;
  video.setAttribute('aria-label', `Video of ${label}`);
  figure.append(video, caption);
  return { figure, video, caption };
}

function playVideo(video) {
  const played = video.play();
  if (played && typeof played.catch === 'function') played.catch(() => {});
}

function showLocalVideo() {
  if (!state.localTile) return;
  const track = currentVideoTrack();
  const { video, figure } = state.localTile;
  figure.classList.toggle('sharing', Boolean(state.screen));
  const showing = state.screen || (state.cam && state.cam.enabled);
  figure.classList.toggle('no-video', !showing);
  figure.dataset.placeholder = state.cam ? 'Your camera is off' : 'You joined without a camera';
  const shown = video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
  if (shown === (track || null)) return;
  video.srcObject = track ? new MediaStream([track]) : null;
  if (video.srcObject) playVideo(video);
}

// ---------------------------------------------------------------------------------------------
// Peers.
// ---------------------------------------------------------------------------------------------

function ensurePeer(id, name) {
  id = String(id);
  let peer = state.peers.get(id);
  if (!peer) {
    const tile = makeTile({ label: name ? cleanName(name) : 'Participant', peerId: id });
    peer = {
      id,
      name: name ? cleanName(name) : null,
      pc: null,
      tile,
      stream: new MediaStream(),
      pendingIce: [],
      videoSender: null,
      connection: 'new',
    };
    state.peers.set(id, peer);
    el.videos.append(tile.figure);
  } else if (name) {
    peer.name = cleanName(name);
  }
  updateCaption(peer);
  renderParticipants();
  return peer;
}

function updateCaption(peer) {
  const name = peer.name || 'Participant';
  const suffix = {
    new: ' — connecting…',
    connecting: ' — connecting…',
    failed: ' — connection failed',
    disconnected: ' — connection lost, retrying…',
  }[peer.connection] ?? '';
  peer.tile.caption.textContent = name + suffix;
  peer.tile.video.setAttribute('aria-label', `Video of ${name}`);
  peer.tile.figure.dataset.connection = peer.connection;
}

function removePeer(id) {
  const peer = state.peers.get(String(id));
  if (!peer) return;
  state.peers.delete(peer.id);
  if (peer.pc) peer.pc.close();
  peer.tile.video.srcObject = null;
  peer.tile.figure.remove();
  renderParticipants();
}

function createConnection(peer) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.onicecandidate = (event) => {
    if (event.candidate) send({ type: 'ice', to: peer.id, candidate: event.candidate.toJSON() });
  };
  pc.ontrack = (event) => {
    const video = peer.tile.video;
    if (event.streams && event.streams[0]) {
      if (video.srcObject !== event.streams[0]) video.srcObject = event.streams[0];
    } else {
      if (!peer.stream.getTracks().includes(event.track)) peer.stream.addTrack(event.track);
      video.srcObject = null;
      video.srcObject = peer.stream;
    }
    playVideo(video);
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
    if (pc.connectionState === 'failed') {
      showNotice(`The connection to ${peer.name || 'a participant'} failed. They may be on a network this room cannot reach.`);
    }
  };
  peer.pc = pc;
  return pc;
}

async function call(peer) {
  if (peer.pc) return;
  const pc = createConnection(peer);
  const streams = state.local ? [state.local] : [];
  pc.addTransceiver(state.mic || 'audio', { direction: 'sendrecv', streams });
  peer.videoSender = pc.addTransceiver(currentVideoTrack() || 'video', { direction: 'sendrecv', streams }).sender;
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: 'offer', to: peer.id, sdp: pc.localDescription.sdp });
}

async function onOffer(from, sdp) {
  const peer = ensurePeer(from);
  if (peer.pc && peer.pc.signalingState !== 'stable') {
    // Both sides offered (should not happen with the larger-id rule): the caller's offer wins.
    if (iCall(peer.id)) return;
    await peer.pc.setLocalDescription({ type: 'rollback' });
  }
  const pc = peer.pc || createConnection(peer);
  await pc.setRemoteDescription({ type: 'offer', sdp });
  for (const transceiver of pc.getTransceivers()) {
    const kind = transceiver.receiver.track.kind;
    const track = kind === 'audio' ? state.mic : currentVideoTrack();
    if (track) await transceiver.sender.replaceTrack(track);
    if (state.local && typeof transceiver.sender.setStreams === 'function') transceiver.sender.setStreams(state.local);
    transceiver.direction = 'sendrecv';
    if (kind === 'video') peer.videoSender = transceiver.sender;
  }
  await pc.setLocalDescription(await pc.createAnswer());
  send({ type: 'answer', to: peer.id, sdp: pc.localDescription.sdp });
  await flushIce(peer);
}

async function onAnswer(from, sdp) {
  const peer = state.peers.get(String(from));
  if (!peer || !peer.pc || peer.pc.signalingState !== 'have-local-offer') return;
  await peer.pc.setRemoteDescription({ type: 'answer', sdp });
  await flushIce(peer);
}

async function onIce(from, candidate) {
  if (!candidate) return;
  const peer = ensurePeer(from);
  if (!peer.pc || !peer.pc.remoteDescription) {
    peer.pendingIce.push(candidate);
    return;
  }
  await peer.pc.addIceCandidate(candidate).catch(() => {});
}

async function flushIce(peer) {
  const pending = peer.pendingIce.splice(0);
  for (const candidate of pending) await peer.pc.addIceCandidate(candidate).catch(() => {});
}

function renderParticipants() {
  const items = [];
  if (state.joined) {
    const me = document.createElement('li');
    me.dataset.peerId = String(state.myId);
    me.textContent = `${state.myName} (you)`;
    items.push(me);
  }
  for (const peer of state.peers.values()) {
    if (!peer.name) continue; // not introduced yet
    const li = document.createElement('li');
    li.dataset.peerId = peer.id;
    li.textContent = peer.name;
    items.push(li);
  }
  el.participants.replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------
// Signalling.
// ---------------------------------------------------------------------------------------------

async function handle(message) {
  switch (message.type) {
    case 'welcome': {
      state.myId = String(message.id);
      state.joined = true;
      send({ type: 'hello', name: state.myName });
      const others = Array.isArray(message.peers) ? message.peers : [];
      for (const p of others) ensurePeer(p.id, p.name);
      renderParticipants();
      showRoom();
      for (const p of others) if (iCall(p.id)) await call(state.peers.get(String(p.id)));
      break;
    }
    case 'peer-joined': {
      if (String(message.id) === state.myId) break;
      const peer = ensurePeer(message.id, message.name);
      if (iCall(peer.id)) await call(peer);
      break;
    }
    case 'peer-left':
      removePeer(message.id);
      break;
    case 'offer':
      if (message.from && typeof message.sdp === 'string') await onOffer(message.from, message.sdp);
      break;
    case 'answer':
      if (message.from && typeof message.sdp === 'string') await onAnswer(message.from, message.sdp);
      break;
    case 'ice':
      if (message.from) await onIce(message.from, message.candidate);
      break;
    default:
      break; // unknown messages are ignored: newer rooms may say more
  }
}

function receive(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (!message || typeof message !== 'object') return;
  state.inbox = state.inbox
    .then(() => handle(message))
    .catch((err) => {
      showNotice(`A message from the room could not be handled (${reason(err)}). If someone’s video is missing, leave and join again.`);
    });
}

function connectSocket() {
  return new Promise((resolve, reject) => {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${window.location.host}/ws`);
    } catch (err) {
      reject(err);
      return;
    }
    state.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      resolve();
    });
    ws.addEventListener('message', receive);
    ws.addEventListener('close', () => {
      if (!opened) {
        reject(new Error('closed'));
        return;
      }
      if (state.ws !== ws || state.leaving) return;
      teardown();
      showLobby();
      showError('The connection to the room was lost: the conference may have ended. Join again to reconnect.');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Joining, controls and leaving.
// ---------------------------------------------------------------------------------------------

function showRoom() {
  el.subtitle.textContent = 'Video and sound go straight between participants; the room only introduces them.';
  el.lobby.hidden = true;
  el.room.hidden = false;
  renderControls();
}

function showLobby() {
  el.room.hidden = true;
  el.lobby.hidden = false;
  el.join.disabled = false;
  el.name.disabled = false;
}

function renderControls() {
  const micOn = Boolean(state.mic && state.mic.enabled);
  el.mute.disabled = !state.mic;
  el.mute.dataset.state = micOn ? 'on' : 'off';
  el.mute.textContent = !state.mic ? 'No microphone' : micOn ? 'Mute' : 'Unmute';
  el.mute.title = !state.mic ? 'You joined without a microphone' : micOn ? 'Mute your microphone' : 'Unmute your microphone';

  const camOn = Boolean(state.cam && state.cam.enabled);
  el.camera.disabled = !state.cam;
  el.camera.dataset.state = camOn ? 'on' : 'off';
  el.camera.textContent = !state.cam ? 'No camera' : camOn ? 'Camera off' : 'Camera on';
  el.camera.title = !state.cam ? 'You joined without a camera' : camOn ? 'Turn your camera off' : 'Turn your camera on';

  const canShare = Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function');
  el.share.disabled = !canShare;
  el.share.dataset.state = state.screen ? 'on' : 'off';
  el.share.textContent = !canShare ? 'No screen sharing' : state.screen ? 'Stop sharing' : 'Share screen';
  el.share.title = !canShare ? 'This browser cannot share a screen' : state.screen ? 'Stop sharing your screen' : 'Share your screen instead of your camera';
}

async function join(event) {
  event.preventDefault();
  showError('');
  showNotice('');
  if (typeof RTCPeerConnection !== 'function' || typeof WebSocket !== 'function') {
    showError('This browser cannot take part in video calls. Please use a recent Chrome, Edge, Firefox or Safari.');
    return;
  }
  state.myName = cleanName(el.name.value);
  el.name.value = state.myName;
  el.join.disabled = true;
  el.name.disabled = true;
  state.leaving = false;

  const { stream, note } = await getLocalMedia();
  state.local = stream;
  state.mic = stream?.getAudioTracks()[0] ?? null;
  state.cam = stream?.getVideoTracks()[0] ?? null;
  if (state.cam) state.cam.addEventListener('ended', () => showNotice('Your camera stopped (it was unplugged or taken by another application).'));
  if (note) showNotice(note);

  state.localTile = makeTile({ label: `${state.myName} (you)`, local: true });
  el.videos.replaceChildren(state.localTile.figure);
  showLocalVideo();

  try {
    await connectSocket();
  } catch {
    teardown();
    showLobby();
    showError('The conference room cannot be reached: it may have ended, or the network is down. Try again in a moment.');
  }
}

function toggleMic() {
  if (!state.mic) return;
  state.mic.enabled = !state.mic.enabled;
  renderControls();
}

function toggleCamera() {
  if (!state.cam) return;
  state.cam.enabled = !state.cam.enabled;
  showLocalVideo();
  renderControls();
}

async function replaceVideoEverywhere(track) {
  const replacing = [];
  for (const peer of state.peers.values()) {
    if (!peer.pc || peer.pc.connectionState === 'closed') continue;
    const sender =
      peer.videoSender ||
      peer.pc.getTransceivers().find((t) => t.receiver.track.kind === 'video')?.sender ||
      null;
    if (sender) replacing.push(sender.replaceTrack(track).catch(() => {}));
  }
  await Promise.all(replacing);
}

async function toggleShare() {
  if (state.screen) {
    await stopSharing();
    return;
  }
  let display;
  try {
    display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    if (err?.name === 'NotAllowedError' || err?.name === 'AbortError') showNotice('Screen sharing was cancelled.');
    else showError(`Your screen could not be shared (${reason(err)}).`);
    return;
  }
  const track = display.getVideoTracks()[0];
  if (!track) return;
  state.screen = track;
  track.addEventListener('ended', () => {
    if (state.screen === track) stopSharing();
  });
  await replaceVideoEverywhere(track);
  showLocalVideo();
  renderControls();
  showNotice('You are sharing your screen with everyone in the room.');
}

async function stopSharing() {
  const track = state.screen;
  if (!track) return;
  state.screen = null;
  track.stop();
  await replaceVideoEverywhere(state.cam);
  showLocalVideo();
  renderControls();
  showNotice('');
}

function teardown() {
  const ws = state.ws;
  state.ws = null;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'leaving');
  for (const id of [...state.peers.keys()]) removePeer(id);
  for (const track of [state.mic, state.cam, state.screen]) if (track) track.stop();
  state.local = null;
  state.mic = null;
  state.cam = null;
  state.screen = null;
  state.localTile = null;
  state.joined = false;
  state.myId = null;
  state.inbox = Promise.resolve();
  el.videos.replaceChildren();
  renderParticipants();
}

function leave() {
  state.leaving = true;
  teardown();
  showLobby();
  showError('');
  showNotice('You left the room. You can join again while the conference runs.');
  el.join.focus();
}

async function describeRoom() {
  try {
    const response = await fetch('/healthz', { cache: 'no-store' });
    if (!response.ok) return;
    const info = await response.json();
    if (info && info.agreementId !== undefined) {
      el.title.textContent = `Conference room ${info.agreementId}`;
      document.title = `Conference room ${info.agreementId}`;
      const n = Number(info.participants) || 0;
      if (!state.joined) {
        el.subtitle.textContent =
          n === 0 ? 'Nobody is here yet.' : n === 1 ? 'One person is here.' : `${n} people are here.`;
      }
    }
  } catch {
    // only a nicety: the room works without it
  }
}

el.form.addEventListener('submit', join);
el.mute.addEventListener('click', toggleMic);
el.camera.addEventListener('click', toggleCamera);
el.share.addEventListener('click', () => toggleShare());
el.leave.addEventListener('click', leave);
window.addEventListener('pagehide', () => {
  state.leaving = true;
  if (state.ws) state.ws.close(1000, 'leaving');
});
describeRoom();
