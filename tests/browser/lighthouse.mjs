// The web app under Lighthouse (issue 23), a plain node script, not a test: the offers and audit pages,
// desktop and mobile presets, each run `--runs` times (default 3) on a fresh local stack, in Debian's
// Chromium resolving no outside host. Writes target/bench/lighthouse.json (bench "web", the shared
// format of tests/README.md) with the four category scores and the first and largest contentful paint
// of every page and preset; `bench-report` merges it into BENCHMARKS.md with the web bench.
//
//   node tests/browser/lighthouse.mjs [--runs 3] [--report DIR]
//
// Lighthouse 12 (tests/browser/lighthouse/, installed by `make bench-web`), its default settings:
// simulated throttling (mobile: a mid-range phone on slow 4G, the CPU four times slower; desktop: dense
// 4G), storage cleared before each run. `--report DIR` also saves each run's HTML report there.
// CONFERENCE_BACKEND_BIN picks the backend binary, whose embedded web build is the one measured.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, startStack, writeBenchFile } from './harness.mjs';

const TOOL = path.join(root, 'tests/browser/lighthouse/node_modules');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const log = (...args) => console.error(...args);

/** `--name value` from the command line, or `fallback`. */
function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : process.argv[at + 1];
}
const RUNS = Number(option('runs', '3'));
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs wants a positive integer, not "${option('runs')}"`);
const REPORTS = option('report', null);

const { default: lighthouse, desktopConfig } = await import(pathToFileURL(path.join(TOOL, 'lighthouse/core/index.js')).href);
const chromeLauncher = await import(pathToFileURL(path.join(TOOL, 'chrome-launcher/dist/index.js')).href);

const PAGES = [
  ['offers', '/'],
  ['audit', '/audit'],
];
const PRESETS = [
  ['mobile', undefined],
  ['desktop', desktopConfig],
];
const CATEGORIES = [
  ['performance', 'performance'],
  ['accessibility', 'accessibility'],
  ['best-practices', 'best practices'],
  ['seo', 'SEO'],
];
/** Issue 23's targets, per category and preset (null: none). */
function targetOf(category, preset) {
  if (category === 'performance') return preset === 'mobile' ? { min: 95 } : null;
  if (category === 'seo') return { min: 95 };
  return { min: 100 };
}
const PAINTS = [
  ['first-contentful-paint', 'firstContentfulPaint', 'first contentful paint'],
  ['largest-contentful-paint', 'largestContentfulPaint', 'largest contentful paint'],
];

const stack = await startStack();
const chrome = await chromeLauncher.launch({
  chromePath: CHROMIUM_BIN,
  chromeFlags: [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // No outside host is ever looked up (as every browser of the tests and benchmarks).
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  ],
  logLevel: 'error',
});
/** Per page and preset: every run's scores (0-100) and paints (ms). */
const results = new Map();
try {
  for (const [name, pathname] of PAGES) {
    for (const [preset, config] of PRESETS) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) {
        const url = new URL(pathname, stack.web).href;
        const outcome = await lighthouse(
          url,
          { port: chrome.port, logLevel: 'error', output: REPORTS ? 'html' : 'json', onlyCategories: CATEGORIES.map(([id]) => id) },
          config,
        );
        const lhr = outcome?.lhr;
        if (!lhr || lhr.runtimeError) throw new Error(`Lighthouse failed on ${url} (${preset}): ${lhr?.runtimeError?.message ?? 'no result'}`);
        const run = {
          scores: Object.fromEntries(CATEGORIES.map(([id]) => [id, Math.round((lhr.categories[id]?.score ?? 0) * 100)])),
          paints: Object.fromEntries(PAINTS.map(([audit]) => [audit, lhr.audits[audit]?.numericValue ?? NaN])),
          // What kept a category below 100, for the log.
          failing: CATEGORIES.flatMap(([id]) =>
            (lhr.categories[id]?.auditRefs ?? [])
              .filter((ref) => ref.weight > 0 && lhr.audits[ref.id]?.score !== null && lhr.audits[ref.id]?.score < 1)
              .map((ref) => `${ref.id} ${lhr.audits[ref.id].score}`),
          ),
        };
        runs.push(run);
        if (REPORTS) {
          mkdirSync(REPORTS, { recursive: true });
          writeFileSync(path.join(REPORTS, `${name}-${preset}-${i + 1}.html`), outcome.report);
        }
        log(
          `${name} ${preset} run ${i + 1}: ${CATEGORIES.map(([id, label]) => `${label} ${run.scores[id]}`).join(', ')}; ` +
            `FCP ${Math.round(run.paints['first-contentful-paint'])} ms, LCP ${Math.round(run.paints['largest-contentful-paint'])} ms` +
            (run.failing.length ? `; below 1: ${run.failing.join(', ')}` : ''),
        );
      }
      results.set(`${name}.${preset}`, runs);
    }
  }
} finally {
  chrome.kill();
  await stack.stop();
}

const figures = [];
for (const [name, pathname] of PAGES) {
  for (const [preset] of PRESETS) {
    const runs = results.get(`${name}.${preset}`);
    const group = `Web app: Lighthouse, ${name} page (${pathname}), ${preset}`;
    for (const [id, label] of CATEGORIES) {
      figures.push({
        id: `web.lighthouse.${name}.${preset}.${id}`,
        group,
        label: `${name} page, ${preset}: ${label} score`,
        unit: 'points',
        samples: runs.map((r) => r.scores[id]),
        target: targetOf(id, preset),
        note: id === 'performance'
          ? `Lighthouse ${preset === 'mobile' ? 'mobile (a mid-range phone on slow 4G, CPU ×4, simulated)' : 'desktop (dense 4G, simulated)'}, one run per sample on a fresh local stack, the backend serving the embedded build.`
          : null,
      });
    }
    for (const [audit, key, label] of PAINTS) {
      figures.push({
        id: `web.lighthouse.${name}.${preset}.${key}`,
        group,
        label: `${name} page, ${preset}: ${label} (simulated)`,
        unit: 'ms',
        samples: runs.map((r) => Math.round(r.paints[audit])),
        target: null,
      });
    }
  }
}
log(`wrote ${path.relative(process.cwd(), writeBenchFile('lighthouse', 'web', figures))}`);
