// The header's "Connect wallet" on a first visit, without the wallet's code: pressing it loads wallet.ts
// (viem's wallet client and the reads that come with sending), which then draws the account, the network
// and the balances in its place. Pages that sign load wallet.ts themselves, which draws the same button.
import { h } from './dom';

/** The button that connects the wallet from the header (`#connect`). */
export function connectButton(): HTMLButtonElement {
  return h(
    'button',
    { type: 'button', id: 'connect', 'data-testid': 'connect', onclick: () => void import('./wallet').then((wallet) => wallet.connectFromHeader()) },
    'Connect wallet',
  );
}

/** Draws the button in `#wallet` unless the wallet's module already drew the header. */
export function drawHeader(): void {
  const slot = document.getElementById('wallet');
  if (slot && !slot.hasChildNodes()) slot.append(connectButton());
}
