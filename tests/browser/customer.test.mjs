// The customer page in headless Chromium, against the real local stack (`conference-backend dev`:
// anvil + escrow + offer 1 + backend + web page), with an injected EIP-1193 wallet that forwards to
// anvil (whose dev accounts are unlocked, so eth_sendTransaction needs no key here).
//
//   node --test tests/browser/
//
// Environment: CONFERENCE_BACKEND_BIN (default target/debug/conference-backend), CHROMIUM_BIN
// (default /usr/bin/chromium). A failed run keeps its temp directory (backend log, screenshots).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createWriteStream, existsSync, mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { chromium } = require(path.join(root, 'anvil/node_modules/playwright-core'));

const BACKEND_BIN = path.resolve(root, process.env.CONFERENCE_BACKEND_BIN || 'target/debug/conference-backend');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];
const READY_TIMEOUT_MS = 120_000;
const STATUS_TIMEOUT_MS = 60_000;

const work = mkdtempSync(path.join(tmpdir(), 'conference-browser-'));
const shots = path.join(work, 'screenshots');
let backend = null; // the child process
let stack = null; // the READY line's JSON
let browser = null;
let context = null;
let failed = false;

const log = (...args) => console.log(...args);

// ---------------------------------------------------------------------------------------------
// The local stack.
// ---------------------------------------------------------------------------------------------

function startBackend() {
  if (!existsSync(BACKEND_BIN)) {
    throw new Error(`${BACKEND_BIN} does not exist: build it first (cargo build --workspace --bins, or make build)`);
  }
  const logFile = path.join(work, 'backend.log');
  const out = createWriteStream(logFile);
  // Its own process group, so that anvil and the rooms it starts can be cleaned up with it.
  const child = spawn(
    BACKEND_BIN,
    ['dev', '--http', '127.0.0.1:0', '--anvil-port', '0', '--data-dir', path.join(work, 'data')],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } },
  );
  backend = child;
  child.stderr.pipe(out);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the backend printed no READY line within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`)),
      READY_TIMEOUT_MS,
    );
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      out.write(`[stdout] ${line}\n`);
      if (!line.startsWith('READY ')) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line.slice('READY '.length)));
      } catch (err) {
        reject(new Error(`the READY line is not JSON: ${line}`));
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`starting ${BACKEND_BIN} failed: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let tail = '';
      try {
        tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
      } catch {}
      reject(new Error(`the backend exited (${signal || code}) before it was ready:\n${tail}`));
    });
  });
}

async function stopBackend() {
  const child = backend;
  if (!child || child.pid === undefined) return;
  backend = null;
  const exited = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', resolve));
  try {
    child.kill('SIGTERM');
  } catch {}
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000));
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    log('the backend did not stop within 5 s of SIGTERM: killing it');
  }
  // Whatever is left of its process group (the backend itself after a timeout, anvil, rooms).
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
}

async function rpc(method, params = []) {
  const response = await fetch(stack.rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

async function api(pathname) {
  const response = await fetch(new URL(pathname, stack.web));
  assert.equal(response.status, 200, `GET ${pathname} answered ${response.status}`);
  return response.json();
}

// ---------------------------------------------------------------------------------------------
// The injected wallet: EIP-1193, announced through EIP-6963, forwarding to anvil through Node.
// ---------------------------------------------------------------------------------------------

function installWallet({ customer }) {
  const listeners = new Map();
  const provider = {
    isTestWallet: true,
    async request({ method, params } = {}) {
      switch (method) {
        case 'eth_requestAccounts':
        case 'eth_accounts':
          return [customer];
        case 'wallet_switchEthereumChain':
        case 'wallet_addEthereumChain':
          return null;
        default: {
          const answer = await window.__rpc(method, params ?? []);
          if (answer.error) {
            const err = new Error(answer.error.message);
            err.code = answer.error.code;
            err.data = answer.error.data;
            throw err;
          }
          return answer.result;
        }
      }
    },
    on(event, handler) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(handler);
      return provider;
    },
    removeListener(event, handler) {
      listeners.get(event)?.delete(handler);
      return provider;
    },
  };
  const info = Object.freeze({
    uuid: '00000000-0000-4000-8000-000000000001',
    name: 'Test Wallet',
    icon: 'data:image/svg+xml,<svg xmlns="http://www.w3.org/2000/svg"/>',
    rdns: 'test.wallet',
  });
  const announce = () =>
    window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
  window.addEventListener('eip6963:requestProvider', announce);
  window.ethereum = provider;
  announce();
}

// ---------------------------------------------------------------------------------------------
// Page helpers.
// ---------------------------------------------------------------------------------------------

/** Waits until #status says `status`, failing early with the page's own error sentence. */
async function waitForStatus(page, status, timeout = STATUS_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    const { current, error } = await page.evaluate(() => ({
      current: document.querySelector('#status')?.dataset.status ?? '',
      error: document.querySelector('#error')?.textContent.trim() ?? '',
    }));
    if (error) throw new Error(`the page shows an error while waiting for "${status}": ${error}`);
    if (current !== last) {
      log(`status: ${current || '(none yet)'}`);
      last = current;
    }
    if (current === status) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the status did not reach "${status}" within ${timeout / 1000} s (last: "${last}")`);
}

async function screenshotAll(label) {
  if (!context) return;
  mkdirSync(shots, { recursive: true });
  let i = 0;
  for (const page of context.pages()) {
    i += 1;
    try {
      await page.screenshot({ path: path.join(shots, `${label}-${i}.png`), fullPage: true });
    } catch {}
  }
  log(`screenshots in ${shots}`);
}

// ---------------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------------

before(async () => {
  log(`temp directory: ${work}`);
  failed = true; // until the test itself passes
  stack = await startBackend();
  log(`stack ready: ${JSON.stringify(stack)}`);
  browser = await chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS, headless: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.exposeFunction('__rpc', async (method, params) => {
    const response = await fetch(stack.rpc, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    });
    const body = await response.json();
    return body.error ? { error: body.error } : { result: body.result ?? null };
  });
  await context.addInitScript(installWallet, { customer: stack.customer });
});

after(async () => {
  try {
    if (browser) await browser.close();
  } catch {}
  await stopBackend();
  if (failed) log(`kept for inspection: ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

test('a customer signs offer 1, joins the room, stops, and is charged to the wei', { timeout: 300_000 }, async () => {
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    const offers = await api('/api/offers');
    const offer = offers.find((o) => String(o.id) === '1');
    assert.ok(offer, 'the stack publishes offer 1');

    // Connect.
    await page.goto(stack.web);
    await page.locator('#sign[data-offer-id="1"]').waitFor();
    await page.click('#connect');
    await page.locator('#account').filter({ hasText: /0x/ }).waitFor({ timeout: 10_000 });
    assert.equal((await page.textContent('#account')).trim().toLowerCase(), stack.customer.toLowerCase());
    await page.locator('#balance').filter({ hasText: /ETH/ }).waitFor({ timeout: 10_000 });

    // Sign offer 1 and wait for the conference.
    await page.click('#sign[data-offer-id="1"]');
    await waitForStatus(page, 'active');
    const id = new URL(page.url()).searchParams.get('agreement');
    assert.match(id ?? '', /^\d+$/, 'the URL names the agreement');
    const joinUrl = await page.getAttribute('#join-url', 'href');
    assert.match(joinUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(await page.getAttribute('#join-url', 'target'), '_blank');
    log(`agreement ${id} is active; room at ${joinUrl}`);

    // The room: two participants see each other in the list and get each other's video.
    const alice = await context.newPage();
    alice.on('pageerror', (err) => pageErrors.push(`room: ${err.message}`));
    await alice.goto(joinUrl);
    await alice.fill('#name', 'Alice');
    await alice.click('#join');
    await alice.locator('#participants li', { hasText: 'Alice' }).waitFor({ timeout: 15_000 });
    const bob = await context.newPage();
    bob.on('pageerror', (err) => pageErrors.push(`room: ${err.message}`));
    await bob.goto(joinUrl);
    await bob.fill('#name', 'Bob');
    await bob.click('#join');
    for (const [who, room] of [['Alice', alice], ['Bob', bob]]) {
      await room.locator('#participants li', { hasText: 'Alice' }).waitFor({ timeout: 15_000 });
      await room.locator('#participants li', { hasText: 'Bob' }).waitFor({ timeout: 15_000 });
      await room.waitForFunction(
        () => [...document.querySelectorAll('#videos .tile:not(.local) video')].some((v) => v.videoWidth > 0),
        null,
        { timeout: 20_000 },
      );
      log(`${who} sees and receives the other participant`);
    }
    const health = await (await fetch(new URL('/healthz', joinUrl))).json();
    assert.equal(health.participants, 2);
    assert.equal(String(health.agreementId), id);
    await bob.click('#leave');
    await alice.locator('#participants li').filter({ hasText: 'Bob' }).waitFor({ state: 'detached', timeout: 10_000 });

    // Ten minutes of conference, then stop.
    await rpc('evm_increaseTime', [600]);
    await rpc('evm_mine', []);
    await page.bringToFront();
    await page.click('#stop');
    await waitForStatus(page, 'settled');
    await page.locator('#settlement').waitFor();

    // The page's figures are the chain's, to the wei.
    const agreement = await api(`/api/agreements/${id}`);
    const price = BigInt(offer.price);
    const deposit = BigInt(offer.deposit);
    assert.equal(agreement.status, 'settled');
    const used = BigInt(agreement.endedAt - agreement.startedAt);
    assert.ok(used >= 600n, `used ${used} s, expected at least 600`);
    const charge = price * used;
    assert.equal(await page.getAttribute('#charge', 'data-wei'), charge.toString());
    assert.equal(await page.getAttribute('#refund', 'data-wei'), (deposit - charge).toString());
    assert.equal(agreement.charged, charge.toString());
    assert.equal(agreement.refund, (deposit - charge).toString());
    assert.equal(await page.getAttribute('#used-seconds', 'data-seconds'), used.toString());
    assert.match(await page.textContent('#transactions'), /0x[0-9a-f]{64}/);
    assert.equal((await page.textContent('#error')).trim(), '');
    assert.deepEqual(pageErrors, [], 'no uncaught error on any page');
    log(`settled: ${used} s used, charge ${charge} wei, refund ${deposit - charge} wei`);
    failed = false;
  } catch (err) {
    await screenshotAll('failure');
    throw err;
  }
});

test('a customer stops without gas by signing in the wallet, and pays only for the time used', { timeout: 300_000 }, async () => {
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const offer = (await api('/api/offers')).find((o) => String(o.id) === '1');

    await page.goto(stack.web);
    await page.locator('#sign[data-offer-id="1"]').waitFor();
    await page.click('#connect');
    await page.locator('#account').filter({ hasText: /0x/ }).waitFor({ timeout: 10_000 });
    await page.click('#sign[data-offer-id="1"]');
    await waitForStatus(page, 'active');
    const id = new URL(page.url()).searchParams.get('agreement');
    const nonceAfterSigning = BigInt(await rpc('eth_getTransactionCount', [stack.customer, 'latest']));

    // Two minutes of conference, then the customer signs a stop: a signature, not a transaction.
    await rpc('evm_increaseTime', [120]);
    await rpc('evm_mine', []);
    // The page stops at the chain's time as it knows it: wait until its running clock has caught up.
    await page.waitForFunction(() => {
      const [minutes] = (document.querySelector('#running-for')?.textContent ?? '').split(':').map(Number);
      return minutes >= 2;
    }, null, { timeout: 15_000 });
    await page.locator('#stop-signed').waitFor();
    await page.click('#stop-signed');
    await waitForStatus(page, 'settled');

    const agreement = await api(`/api/agreements/${id}`);
    const used = BigInt(agreement.endedAt - agreement.startedAt);
    assert.ok(used >= 120n, `used ${used} s, expected at least 120`);
    const charge = BigInt(offer.price) * used;
    assert.equal(agreement.charged, charge.toString());
    assert.equal(agreement.refund, (BigInt(offer.deposit) - charge).toString());
    assert.equal(await page.getAttribute('#charge', 'data-wei'), charge.toString());
    const nonceAfterStop = BigInt(await rpc('eth_getTransactionCount', [stack.customer, 'latest']));
    assert.equal(nonceAfterStop, nonceAfterSigning, 'the customer sent no transaction to stop');
    assert.equal((await page.textContent('#error')).trim(), '');
    assert.deepEqual(pageErrors, [], 'no uncaught error on the page');
    log(`stopped by signature after ${used} s: charge ${charge} wei, no stop transaction`);
  } catch (err) {
    failed = true;
    await screenshotAll('failure-signed-stop');
    throw err;
  }
});
