// The path router: which page a path shows, and navigation without a reload. The backend serves
// index.html for every page path, so links are plain paths (`/agreement/7`, `/join/7`, `/provider`,
// `/audit`) that survive a reload and can be shared.
//
// Pages import this module (for `Page` and `navigate`) and it imports no page: the table of routes is
// handed to `startRouter` by the entry (main.ts), so imports only ever point down.
import { h, replace, showError } from './dom';
import { userMessage } from './errors';

/** A page draws itself into `root`; it may return a function that stops its streams and timers. */
export type Page = (root: HTMLElement, params: string[]) => Promise<(() => void) | void> | (() => void) | void;

/** A path pattern (its groups are the page's params) and the page's module, loaded on demand. */
export type Route = [pattern: RegExp, load: () => Promise<{ default: Page }>];

let routes: readonly Route[] = [];
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
  // A fragment (`/audit#agreement-7`) stays in the address for the page to read; routes match the path.
  void show(location.pathname);
}

/** Routes same-origin link clicks and the back and forward buttons through `table`, and shows the
 *  current path. Called once, by the entry. */
export function startRouter(table: readonly Route[]): void {
  routes = table;
  document.addEventListener('click', (event) => {
    const link = (event.target as Element).closest?.('a');
    if (!link || link.origin !== location.origin || link.target || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (link.pathname.startsWith('/api/') || link.hasAttribute('download')) return;
    event.preventDefault();
    navigate(link.pathname + link.search + link.hash);
  });
  window.addEventListener('popstate', () => void show(location.pathname));
  void show(location.pathname);
}
