// The app's one entry (index.html loads it): the styles, the header's "Connect wallet", and the table of
// pages handed to the router. Nothing imports this module; pages take `Page` and `navigate` from router.ts.
import './style.css';
import { config } from './config';
import { drawHeader } from './header';
import { startRouter } from './router';

// Every page needs the service's config: asked for while the page's code loads.
void config().catch(() => {});
drawHeader();
startRouter([
  [/^\/$/, () => import('./pages/offers')],
  [/^\/agreement\/(\d+)$/, () => import('./pages/agreement')],
  [/^\/history$/, () => import('./pages/history')],
  [/^\/join\/(\d+)$/, () => import('./pages/join')],
  [/^\/provider$/, () => import('./pages/provider')],
  [/^\/audit$/, () => import('./pages/audit')],
]);
