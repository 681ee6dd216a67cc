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

/** A path pattern (its groups are the page's params), the page's module, loaded on demand, and the
 *  page's title from its params (the document's title is `<title> · Conference escrow`). */
export type Route = [pattern: RegExp, load: () => Promise<{ default: Page }>, title: (params: string[]) => string];

const SITE = 'Conference escrow';

let routes: readonly Route[] = [];
let stopCurrent: (() => void) | void;

/** Shows the page at `path`. `moveFocus`: after an in-app navigation, focus moves to the new page's
 *  content (screen readers announce it); on the first load it stays where the browser put it, so the
 *  skip link, the navigation and "Connect wallet" come first in the tab order. */
async function show(path: string, moveFocus: boolean): Promise<void> {
  stopCurrent?.();
  stopCurrent = undefined;
  showError(null);
  const main = document.getElementById('main')!;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    link.toggleAttribute('aria-current', link.pathname === path || (link.pathname !== '/' && path.startsWith(link.pathname)));
  }
  const route = routes.find(([pattern]) => pattern.test(path));
  if (!route) {
    document.title = `Not found · ${SITE}`;
    replace(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no page here. ', h('a', { href: '/' }, 'See the offers.')));
    if (moveFocus) main.focus({ preventScroll: true });
    return;
  }
  const params = path.match(route[0])!.slice(1);
  document.title = `${route[2](params)} · ${SITE}`;
  replace(main);
  try {
    const page = (await route[1]()).default;
    stopCurrent = await page(main, params);
  } catch (err) {
    showError(userMessage(err));
  }
  if (moveFocus) main.focus({ preventScroll: true });
}

/** Navigates without a reload: same-origin links and `navigate('/agreement/7')`. */
export function navigate(path: string): void {
  history.pushState(null, '', path);
  // A fragment (`/audit#agreement-7`) stays in the address for the page to read; routes match the path.
  void show(location.pathname, true);
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
  window.addEventListener('popstate', () => void show(location.pathname, true));
  void show(location.pathname, false);
}
