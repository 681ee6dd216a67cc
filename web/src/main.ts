// The app's one entry: a path router over the pages. The backend serves index.html for every page
// path, so links are plain paths (`/agreement/7`, `/join/7`, `/provider`, `/audit`) that survive a
// reload and can be shared.
import './style.css';
import { h, replace, showError } from './dom';
import { userMessage } from './errors';
// The header's wallet (connect, account, network, balances) on every page.
import './wallet';

/** A page draws itself into `root`; it may return a function that stops its streams and timers. */
export type Page = (root: HTMLElement, params: string[]) => Promise<(() => void) | void> | (() => void) | void;

const routes: [RegExp, () => Promise<{ default: Page }>][] = [
  [/^\/$/, () => import('./pages/offers')],
  [/^\/agreement\/(\d+)$/, () => import('./pages/agreement')],
  [/^\/history$/, () => import('./pages/history')],
  [/^\/join\/(\d+)$/, () => import('./pages/join')],
  [/^\/provider$/, () => import('./pages/provider')],
  [/^\/audit$/, () => import('./pages/audit')],
];

let stopCurrent: (() => void) | void;

async function show(path: string): Promise<void> {
  stopCurrent?.();
  stopCurrent = undefined;
  showError(null);
  const main = document.getElementById('main')!;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    link.toggleAttribute('aria-current', link.pathname === path || (link.pathname !== '/' && path.startsWith(link.pathname)));
  }
  const route = routes.find(([pattern]) => pattern.test(path));
  if (!route) {
    replace(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no page here. ', h('a', { href: '/' }, 'See the offers.')));
    return;
  }
  const params = path.match(route[0])!.slice(1);
  replace(main);
  try {
    const page = (await route[1]()).default;
    stopCurrent = await page(main, params);
  } catch (err) {
    showError(userMessage(err));
  }
  main.focus({ preventScroll: true });
}

/** Navigates without a reload: same-origin links and `navigate('/agreement/7')`. */
export function navigate(path: string): void {
  history.pushState(null, '', path);
  void show(path);
}

document.addEventListener('click', (event) => {
  const link = (event.target as Element).closest?.('a');
  if (!link || link.origin !== location.origin || link.target || event.ctrlKey || event.metaKey || event.shiftKey) return;
  if (link.pathname.startsWith('/api/') || link.hasAttribute('download')) return;
  event.preventDefault();
  navigate(link.pathname + link.search);
});
window.addEventListener('popstate', () => void show(location.pathname));
void show(location.pathname);
