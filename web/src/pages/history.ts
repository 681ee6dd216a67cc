// The connected customer's agreements (`/history`), newest first, each linking to its page.
import { api } from '../api';
import { config, token as tokenOf } from '../config';
import { h, replace, scrollBox, showError } from '../dom';
import { userMessage } from '../errors';
import { formatAmount, formatTime } from '../format';
import type { Page } from '../router';
import { account, connect, onWalletChange } from '../wallet';

const page: Page = async (root) => {
  const cfg = await config();
  const body = h('div', { id: 'history' });
  replace(root, h('h1', {}, 'My agreements'), body);

  async function render(): Promise<void> {
    const me = account();
    if (!me) {
      replace(
        body,
        h('p', {}, 'Connect your wallet to see the agreements you signed.'),
        h('button', { type: 'button', id: 'history-connect', onclick: () => void connect().catch((err) => showError(userMessage(err))) }, 'Connect wallet'),
      );
      return;
    }
    replace(body, h('p', { class: 'hint' }, 'Loading your agreements…'));
    try {
      const list = await api.agreements({ customer: me });
      if (account() !== me) return;
      if (list.length === 0) {
        replace(body, h('p', {}, 'You have no agreement yet. ', h('a', { href: '/' }, 'See the offers.')));
        return;
      }
      replace(
        body,
        scrollBox(
          'Your agreements',
          h(
            'table',
            { id: 'history-table', 'data-testid': 'history-table' },
            h('caption', { class: 'visually-hidden' }, 'Your agreements, newest first'),
            h('thead', {}, h('tr', {}, ...['Agreement', 'Model', 'Status', 'Locked', 'Charged', 'Refunded', 'Signed'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              {},
              ...list.map((a) => {
                const token = tokenOf(cfg, a.tokenId);
                return h(
                  'tr',
                  { 'data-testid': 'history-row', 'data-agreement-id': a.id, 'data-status': a.status },
                  h('th', { scope: 'row' }, h('a', { href: `/agreement/${a.id}` }, `#${a.id}`)),
                  h('td', {}, a.model),
                  h('td', {}, h('span', { class: 'badge', 'data-status': a.status }, a.status)),
                  h('td', { class: 'amount' }, formatAmount(BigInt(a.deposit), token)),
                  h('td', { class: 'amount' }, formatAmount(BigInt(a.charged), token)),
                  h('td', { class: 'amount' }, a.refund == null ? '—' : formatAmount(BigInt(a.refund), token)),
                  h('td', {}, formatTime(a.signedAt)),
                );
              }),
            ),
          ),
        ),
      );
    } catch (err) {
      showError(userMessage(err));
    }
  }

  const unwatch = onWalletChange(() => void render());
  await render();
  return unwatch;
};
export default page;
