// What each page of the web app loads (bench.mjs): a page opened in a fresh browser context, no wallet
// (a first visit), until the network is idle; the files of web/dist it fetched (the document, scripts,
// styles), each counted at its gzip size at level 9 from web/dist, whatever the backend sent, so that
// builds compare whether or not the backend compresses.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { openPage, root } from './harness.mjs';

const DIST = path.join(root, 'web/dist');

/** The pages, by name, at paths every stack has (agreement 1 need not exist: its page's code loads). */
export const PAGES = [
  ['offers', '/'],
  ['agreement', '/agreement/1'],
  ['history', '/history'],
  ['account', '/account'],
  ['join', '/join/1'],
  ['provider', '/provider'],
  ['audit', '/audit'],
];

/** Per page: the web/dist files it fetched and their gzip and raw bytes. */
export async function pageBundles(browser, stack, pages = PAGES) {
  const sizes = new Map();
  const sizeOf = (file) => {
    if (!sizes.has(file)) {
      const bytes = readFileSync(path.join(DIST, file));
      sizes.set(file, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
    }
    return sizes.get(file);
  };
  const origin = new URL(stack.web).origin;
  const out = [];
  for (const [name, pathname] of pages) {
    const page = await openPage(browser, null);
    const fetched = new Set();
    page.on('requestfinished', (request) => {
      const url = new URL(request.url());
      if (url.origin !== origin || url.pathname.startsWith('/api/')) return;
      if (!['document', 'script', 'stylesheet'].includes(request.resourceType())) return;
      fetched.add(request.resourceType() === 'document' ? 'index.html' : url.pathname.replace(/^\//, ''));
    });
    await page.goto(new URL(pathname, stack.web).href);
    await page.waitForLoadState('networkidle');
    const files = [...fetched].sort();
    const gzip = files.reduce((sum, file) => sum + sizeOf(file).gzip, 0);
    const raw = files.reduce((sum, file) => sum + sizeOf(file).raw, 0);
    out.push({ name, pathname, files, gzip, raw });
    await page.context().close();
  }
  return out;
}
