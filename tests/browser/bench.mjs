// The web app's benchmark (issue 7, part 5), a plain node script, not a test: the production bundle's
// size, what each page loads (bundle.mjs), the offers page's time to interactive in headless Chromium on
// the local stack, and the time from pressing "Pay" to the join link shown. Writes target/bench/web.json in the shared benchmark
// format (tests/README.md), which `bench-report` merges into BENCHMARKS.md.
//
//   node tests/browser/bench.mjs [--loads 10] [--pays 5]
//
// The bundle is web/dist as `make web` built it (every file, raw and gzip at level 9, the total and the
// first load: index.html and the scripts, module preloads and stylesheets its tags name). The browser
// figures run against `conference-backend dev` (harness.mjs; CONFERENCE_BACKEND_BIN picks the binary,
// whose embedded web build is the one served).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pageBundles } from './bundle.mjs';
import { launch, openPage, root, startStack, writeBenchFile } from './harness.mjs';

const DIST = path.join(root, 'web/dist');
const STEP_TIMEOUT_MS = 90_000;
const log = (...args) => console.error(...args);

/** `--name value` from the command line, as a positive integer, or `fallback`. */
function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} wants a positive integer, not "${process.argv[at + 1]}"`);
  return value;
}
const LOADS = option('loads', 10);
const PAYS = option('pays', 5);

const kB = (bytes) => Math.round(bytes / 10) / 100; // 1 kB = 1,000 bytes, to the 10 bytes
const ms = (value) => Math.round(value * 10) / 10;

// ---------------------------------------------------------------------------------------------
// The production bundle.
// ---------------------------------------------------------------------------------------------

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir, prefix = '') {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = path.posix.join(prefix, entry.name);
      return entry.isDirectory() ? filesUnder(dir, rel) : [rel];
    })
    .sort();
}

/** A built file's base name without Vite's 8-character content hash (`assets/offers-LYTIdKoV.js` →
 *  `offers.js`), so that its figure id stays the same across builds. */
export function stableName(file) {
  return path.posix.basename(file).replace(/^(.+)-[\w-]{8}(\.\w+)$/, '$1$2');
}

/** The files index.html loads before anything else: its `<script src>` and its `<link href>` of
 *  rel stylesheet or modulepreload (inline `data:` links are not files). */
export function firstLoadFiles(html) {
  const files = new Set(['index.html']);
  for (const [tag] of html.matchAll(/<(script|link)\b[^>]*>/gi)) {
    const isScript = /^<script/i.test(tag);
    const rel = /\brel\s*=\s*["']?([^"'\s>]+)/i.exec(tag)?.[1]?.toLowerCase();
    if (!isScript && rel !== 'stylesheet' && rel !== 'modulepreload') continue;
    const ref = /\b(?:src|href)\s*=\s*["']([^"']+)["']/i.exec(tag)?.[1];
    if (!ref || /^[a-z]+:/i.test(ref)) continue;
    files.add(ref.replace(/^\.?\//, ''));
  }
  return [...files];
}

function bundleFigures() {
  statSync(path.join(DIST, 'index.html')); // throws a clear ENOENT when `make web` has not run
  // The build's precompressed copies (`.br`, `.gz`: what the backend sends a browser) are not files of
  // the app: each figure counts the original, at its gzip size.
  const sizes = new Map(
    filesUnder(DIST).filter((file) => !/\.(br|gz)$/.test(file)).map((file) => {
      const bytes = readFileSync(path.join(DIST, file));
      return [file, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length }];
    }),
  );
  const first = firstLoadFiles(readFileSync(path.join(DIST, 'index.html'), 'utf8'));
  for (const file of first) if (!sizes.has(file)) throw new Error(`index.html names ${file}, which is not in web/dist`);
  const sum = (files, key) => files.reduce((total, file) => total + sizes.get(file)[key], 0);
  const all = [...sizes.keys()];
  const group = 'Web app';
  const figures = [
    {
      id: 'web.bundle.firstLoad.gzip',
      group,
      label: `production bundle, first load (index.html and the ${first.length - 1} files its tags name), gzip`,
      unit: 'kB',
      samples: [kB(sum(first, 'gzip'))],
      target: null,
      note: `Gzip at level 9 (node's zlib), 1 kB = 1,000 bytes; raw ${kB(sum(first, 'raw'))} kB. The backend sends the build's brotli copies (smaller still) to browsers that take them, its gzip copies to those that take only gzip.`,
    },
    {
      id: 'web.bundle.firstLoad.raw',
      group,
      label: 'production bundle, first load, raw',
      unit: 'kB',
      samples: [kB(sum(first, 'raw'))],
      target: null,
    },
    {
      id: 'web.bundle.total.gzip',
      group,
      label: `production bundle, all ${all.length} files of web/dist, gzip`,
      unit: 'kB',
      samples: [kB(sum(all, 'gzip'))],
      target: null,
      note: 'Every page (offers, agreement, join, history, provider, audit) included; the pages past the first load are fetched when visited.',
    },
    {
      id: 'web.bundle.total.raw',
      group,
      label: 'production bundle, all files, raw',
      unit: 'kB',
      samples: [kB(sum(all, 'raw'))],
      target: null,
    },
  ];
  for (const [file, size] of sizes) {
    const name = stableName(file);
    const firstLoad = first.includes(file) ? ' (first load)' : '';
    for (const key of ['gzip', 'raw']) {
      figures.push({
        id: `web.bundle.file.${name}.${key}`,
        group: 'Web app: the production bundle, per file',
        label: `${file}${firstLoad}, ${key}`,
        unit: 'kB',
        samples: [kB(size[key])],
        target: null,
      });
    }
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// The browser figures.
// ---------------------------------------------------------------------------------------------

/** Runs in the page before its scripts: records in `window.__interactiveAt` the `performance.now()`
 *  (milliseconds since navigation start) at which the first offer's "Choose" button is first visible
 *  and enabled, checked at every change of the document. */
function watchInteractive() {
  const ready = () => {
    const button = document.querySelector('[data-testid^="choose-"]');
    return !!button && !button.disabled && button.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  };
  const observer = new MutationObserver(() => {
    if (window.__interactiveAt === undefined && ready()) {
      window.__interactiveAt = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, { subtree: true, childList: true, attributes: true });
}

/** One fresh page load of the offers page in a new context (the customer's wallet injected, an empty
 *  cache): the time to interactive and the bytes fetched until then. */
async function loadOnce(browser, stack) {
  const page = await openPage(browser, null, { account: stack.customer });
  await page.addInitScript(watchInteractive);
  await page.goto(stack.web, { waitUntil: 'commit' });
  const handle = await page.waitForFunction(() => window.__interactiveAt, null, { timeout: STEP_TIMEOUT_MS });
  const interactive = await handle.jsonValue();
  const fetched = await page.evaluate((until) => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
    return entries.filter((e) => e.responseEnd <= until).reduce((total, e) => total + (e.transferSize || e.encodedBodySize || 0), 0);
  }, interactive);
  if (page.errors.length) throw new Error(`the offers page reported errors: ${page.errors.join('; ')}`);
  await page.context().close();
  return { interactive, fetched };
}

/** One dynamic-price agreement the way tests/browser/customer.test.mjs's dynamic-price test makes it:
 *  connect, choose terms 1, wait for the quote and its gas estimate, press "Pay"; returns the
 *  milliseconds from the press to the join link shown. The agreement is then stopped and followed to
 *  its settlement, so that no room of an earlier run is left running during the next. */
async function payOnce(browser, stack) {
  const page = await openPage(browser, stack.web, { account: stack.customer });
  await page.locator('[data-testid="choose-1"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  if (!(await page.locator('#account').count())) {
    await page.click('#connect');
    await page.locator('#account').waitFor();
  }
  await page.click('[data-testid="choose-1"]');
  await page.locator('#quote-deposit').waitFor();
  await page.locator('#quote-gas, [data-testid="quote-error"]').first().waitFor();
  if (await page.locator('[data-testid="quote-error"]').count()) {
    throw new Error(`the quote failed: ${await page.textContent('[data-testid="quote-error"]')}`);
  }
  await page.locator('#pay:not([disabled])').waitFor();
  const pressed = performance.now();
  await page.click('#pay');
  await page.locator('#join-link').waitFor({ timeout: STEP_TIMEOUT_MS });
  const elapsed = performance.now() - pressed;
  await page.locator('#stop:not([disabled])').waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.click('#stop');
  await page.locator('#status[data-status="settled"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  if (page.errors.length) throw new Error(`the agreement page reported errors: ${page.errors.join('; ')}`);
  await page.context().close();
  return elapsed;
}

async function browserFigures() {
  const stack = await startStack();
  const browser = await launch();
  try {
    const pages = await pageBundles(browser, stack);
    for (const p of pages) log(`  ${p.name} (${p.pathname}) loads ${kB(p.gzip)} kB gzip: ${p.files.join(', ')}`);
    log(`stack ready: ${stack.web}; one warm-up load, then ${LOADS} measured`);
    await loadOnce(browser, stack);
    const loads = [];
    for (let i = 0; i < LOADS; i++) {
      loads.push(await loadOnce(browser, stack));
      log(`  load ${i + 1}: interactive at ${ms(loads[i].interactive)} ms, ${kB(loads[i].fetched)} kB fetched`);
    }
    const pays = [];
    for (let i = 0; i < PAYS; i++) {
      pays.push(await payOnce(browser, stack));
      log(`  pay ${i + 1}: join link shown after ${ms(pays[i])} ms`);
    }
    const group = 'Web app';
    const perPage = pages.map((p) => ({
      id: `web.bundle.page.${p.name}.gzip`,
      group: 'Web app: what each page loads',
      label: `${p.name} page (${p.pathname}), the files of web/dist it loads, gzip`,
      unit: 'kB',
      samples: [kB(p.gzip)],
      target: null,
      note: `A first visit without a wallet, until the network is idle: ${p.files.map(stableName).join(', ')}; raw ${kB(p.raw)} kB. Gzip at level 9 (node's zlib) of each file as built.`,
    }));
    return [
      ...perPage,
      {
        id: 'web.offers.timeToInteractive',
        group,
        label: 'offers page: time to interactive (navigation start to the first "Choose" button visible and enabled)',
        unit: 'ms',
        samples: loads.map((l) => ms(l.interactive)),
        target: null,
        note: `performance.now() in the page at the first document change after which the button is visible and enabled; ${LOADS} loads, each in a new browser context (empty cache, the wallet injected) after one uncounted warm-up load, on loopback with no network throttling. What bounds it: the first load's scripts and the offers page's chunk, then GET /api/config and /api/offers (asked for together), after which the page draws the offers; the chain's details (two multicalls) fill in afterwards and are not waited for.`,
      },
      {
        id: 'web.offers.fetchedUntilInteractive',
        group,
        label: 'offers page, bytes fetched until interactive (as served)',
        unit: 'kB',
        samples: loads.map((l) => kB(l.fetched)),
        target: null,
        note: "The navigation and resource entries that ended by then, at their transfer size: the first load plus the offers page's own chunk and the API answers, as the backend sends them (the build's brotli copies, the API's JSON gzipped).",
      },
      {
        id: 'web.pay.toJoinLink',
        group,
        label: 'dynamic price: "Pay" pressed to the join link shown',
        unit: 'ms',
        samples: pays.map(ms),
        target: null,
        note: "The steps of customer.test.mjs's dynamic-price test: the wallet (anvil's unlocked dev account, automining) sends the sign transaction, the backend sees the block, deploys a local room, sends and mines the activation, and the page shows the link once it reads the agreement as active. Bounded by the backend's chain polling and the room process's start.",
      },
    ];
  } finally {
    await browser.close().catch(() => {});
    await stack.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const bundle = bundleFigures();
const timed = await browserFigures();
log(`wrote ${path.relative(process.cwd(), writeBenchFile('web', 'web', [...timed, ...bundle]))}`);
