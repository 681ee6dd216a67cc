// The participant's way in (`/join/{id}`, the link the customer shares): connect a wallet, sign the
// short Sign-In with Ethereum challenge, get a join token for this conference. Only the addresses the
// customer registered (and the customer) get one; anyone else is refused with a sentence. Jitsi rooms
// open at the URL the backend issued (it carries the token); the local orchestrator's conference runs
// on this page (room.ts) through its Janus SFU, with the token renewed while the page is open.
import { ApiError, api } from '../api';
import { h, replace, showError, showNotice } from '../dom';
import { userMessage } from '../errors';
import type { Page } from '../router';
import { mountRoom } from '../room';
import { ensureSession } from '../siwe';
import { account, connect } from '../wallet';

const page: Page = (root, [idText]) => {
  const id = Number(idText);
  const join = h('button', { type: 'button', id: 'join', 'data-testid': 'join' }, 'Connect wallet and sign in');
  const refusal = h('p', { id: 'join-refused', 'data-testid': 'join-refused', class: 'alert', role: 'alert', hidden: true });
  const lobby = h(
    'section',
    { id: 'lobby', class: 'card' },
    h('p', {}, 'This conference is open to the participants its organiser registered. Sign in with your wallet to show which address you are: it is one signature and costs nothing.'),
    h('p', {}, join),
    refusal,
  );
  const roomSlot = h('div', { id: 'room-slot' });
  replace(root, h('h1', { id: 'join-title', tabindex: -1 }, `Conference ${id}`), lobby, roomSlot);

  let leaveRoom: (() => void) | undefined;
  const backToLobby = () => {
    leaveRoom = undefined;
    lobby.hidden = false;
    join.disabled = false;
    join.textContent = 'Join again';
    join.focus();
  };

  join.addEventListener('click', async () => {
    showError(null);
    refusal.hidden = true;
    join.disabled = true;
    let me: string | null = null;
    try {
      me = account() ?? (await connect());
      await ensureSession(account() ?? (me as `0x${string}`));
      showNotice('Signed in: asking for your pass to the room…');
      const pass = await api.joinToken(id);
      showNotice(null);
      if (pass.room === 'jitsi') {
        location.assign(pass.joinUrl);
        return;
      }
      lobby.hidden = true;
      leaveRoom = mountRoom(roomSlot, {
        me,
        pass,
        renew: () => api.joinToken(id),
        running: async () => ['deploying', 'activating', 'active'].includes((await api.agreement(id)).status),
        onLeft: backToLobby,
      });
    } catch (err) {
      showNotice(null);
      join.disabled = false;
      if (err instanceof ApiError && err.status === 403) {
        const text = `This address (${me ?? 'yours'}) is not registered for this conference: ask the organiser to register it, or switch to a registered account in your wallet.`;
        refusal.textContent = text;
        refusal.hidden = false;
      } else if (err instanceof ApiError && err.status === 409) {
        showError('The conference is not running right now: try again once the organiser has started it.');
      } else {
        showError(userMessage(err));
      }
    }
  });

  return () => leaveRoom?.();
};
export default page;
