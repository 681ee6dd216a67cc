// The app's one entry (index.html loads it): the styles, the header's wallet, and the table of pages
// handed to the router. Nothing imports this module; pages take `Page` and `navigate` from router.ts.
import './style.css';
// The header's wallet (connect, account, network, balances) on every page.
import './wallet';
import { startRouter } from './router';

startRouter([
  [/^\/$/, () => import('./pages/offers')],
  [/^\/agreement\/(\d+)$/, () => import('./pages/agreement')],
  [/^\/history$/, () => import('./pages/history')],
  [/^\/join\/(\d+)$/, () => import('./pages/join')],
  [/^\/provider$/, () => import('./pages/provider')],
  [/^\/audit$/, () => import('./pages/audit')],
]);
