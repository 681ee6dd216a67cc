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
  [/^\/$/, () => import('./pages/offers'), () => 'Book a conference'],
  [/^\/agreement\/(\d+)$/, () => import('./pages/agreement'), ([id]) => `Agreement ${id}`],
  [/^\/history$/, () => import('./pages/history'), () => 'My agreements'],
  [/^\/account$/, () => import('./pages/account'), () => 'My account'],
  [/^\/join\/(\d+)$/, () => import('./pages/join'), ([id]) => `Join conference ${id}`],
  [/^\/provider$/, () => import('./pages/provider'), () => 'Providers'],
  [/^\/audit$/, () => import('./pages/audit'), () => 'Audit'],
]);
