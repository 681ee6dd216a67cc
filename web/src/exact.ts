// An amount shown for a glance with its exact figure a hover or a keyboard focus away (the account page's
// balances; the header shows its balances rounded with the exact figure as their title).
import { h } from './dom';
import { formatAmount, formatAmountShort } from './format';

/** An amount shown for a glance (`formatAmountShort`) with its exact figure a hover or a keyboard focus
 *  away: the exact amount and its base units as the `title` (as the header's balances), and, for the
 *  keyboard and screen readers, the same sentence in a tooltip the figure points at (`aria-describedby`),
 *  shown while the figure has the keyboard's focus (style.css, `.exact`). `set` redraws it in place, so a
 *  figure that has focus keeps it. The figure carries `data-wei` (base units, whatever the token). */
export interface ExactAmount {
  element: HTMLElement;
  set(value: bigint): void;
}

export function exactAmount(id: string, token: { symbol: string; decimals: number; address: string | null }): ExactAmount {
  const figure = h('span', { id, class: 'amount exact', tabindex: 0, 'aria-describedby': `${id}-exact`, 'data-testid': id });
  const tooltip = h('span', { id: `${id}-exact`, class: 'exact-figure', role: 'tooltip' });
  const unit = token.address === null ? 'wei' : `base units of ${token.symbol}`;
  return {
    element: h('span', { class: 'exact-wrap' }, figure, tooltip),
    set(value: bigint) {
      const exact = `exactly ${formatAmount(value, token)}: ${value} ${unit}`;
      figure.textContent = formatAmountShort(value, token);
      figure.title = exact;
      figure.dataset.wei = value.toString();
      tooltip.textContent = exact;
    },
  };
}
