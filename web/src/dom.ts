// A few lines instead of a framework: build elements with attributes and children, and announce
// messages in the page's one live region.

type Child = Node | string | number | bigint | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h('button', {id: 'pay', onclick: pay}, 'Pay')`: attributes starting with `on` become listeners;
 *  `false`/`null`/`undefined` attributes and children are skipped; text is never parsed as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return element;
}

/** Replaces `element`'s children. */
export function replace(element: Element, ...children: Child[]): void {
  element.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))));
}

/** Shows `message` in the page's alert region (`#error`, role=alert), or clears it. */
export function showError(message: string | null): void {
  const region = document.getElementById('error');
  if (!region) return;
  region.textContent = message ?? '';
  region.hidden = !message;
}

/** Shows a polite status line (`#notice`, role=status), or clears it. */
export function showNotice(message: string | null): void {
  const region = document.getElementById('notice');
  if (!region) return;
  region.textContent = message ?? '';
  region.hidden = !message;
}

/** A wide table's scroll box: a labelled region that takes focus, so that it scrolls from the keyboard
 *  (and Safari, which does not focus scroll boxes by itself, reaches it) when the table is wider than it. */
export function scrollBox(label: string, table: HTMLTableElement): HTMLElement {
  return h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': label }, table);
}
