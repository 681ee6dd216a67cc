// What every browser test shares: the real local stack (`conference-backend dev`: anvil, the
// contracts, the demo offers, the stablecoin, the backend serving the built web app), Debian's
// Chromium driven by playwright-core (never a downloaded browser), and an injected wallet.
//
// The wallet stands in for MetaMask: an EIP-1193 provider announced through EIP-6963 and set as
// `window.ethereum`, acting as any of anvil's dev accounts and forwarding every call to anvil through
// Node (anvil's dev accounts are unlocked, so it signs transactions, `personal_sign` and
// `eth_signTypedData_v4` itself). It can pretend to be on another chain and refuse to switch (a wrong
// network), and reject the next request with code 4001 (the user said no).
//
// Environment: CONFERENCE_BACKEND_BIN (default $CARGO_TARGET_DIR or target/, then
// debug/conference-backend), CHROMIUM_BIN (default /usr/bin/chromium), ANVIL_BIN (default
// anvil/node_modules/.bin/anvil). A stopped stack removes its temp directory unless KEEP_STACK=1 or it
// failed to start; screenshots go to target/browser-artifacts/.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
const { chromium } = require(path.join(root, 'anvil/node_modules/playwright-core'));
/** viem, as the web app pins it, for the tests' own reads of the chain. */
export const viem = createRequire(path.join(root, 'web/package.json'))('viem');
/** The contracts' ABIs, as the backend and the web app bind them. */
export const abi = Object.fromEntries(
  ['ConferenceEscrow', 'OfferBook', 'ProviderRegistry'].map((name) => [name, require(path.join(root, `backend/abi/${name}.json`)).abi]),
);

const BACKEND_BIN = path.resolve(
  root,
  process.env.CONFERENCE_BACKEND_BIN || path.join(process.env.CARGO_TARGET_DIR || 'target', 'debug/conference-backend'),
);
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
/** TOOLCHAIN.md's flags, with the fake camera and microphone for WebRTC. */
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
  // No outside host is ever looked up (Chromium asks for Google's at start otherwise).
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];
const READY_TIMEOUT_MS = 120_000;
/** Where screenshots go: the test artifacts folder. */
export const ARTIFACTS = path.join(root, 'target/browser-artifacts');

let current = null; // the stack `rpc` talks to

/** Starts `conference-backend dev` on free ports (with `env` added to its environment) and waits for
 *  its READY line. Returns the line's fields (web, rpc, escrow, customer, customerKey, token),
 *  `accounts` (anvil's dev accounts), `chainId`, `config` (GET /api/config), `work` (its temp
 *  directory), `rooms` (its conferences' folder) and `stop()`. */
export async function startStack({ env: extra = {} } = {}) {
  if (!existsSync(BACKEND_BIN)) {
    throw new Error(`${BACKEND_BIN} does not exist: build it first (cargo build --workspace --bins, or make build)`);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'conference-browser-'));
  const logFile = path.join(work, 'backend.log');
  const out = createWriteStream(logFile);
  // One availability slot an hour of chain time unless a test asks for real-time probing: the tests
  // move the chain's clock on by minutes in a second (`advance`), and minutes without a probe would be
  // an outage (a slot without a probe counts as down). `advance` first waits for each running
  // conference's first probe, which is then the whole evidence of its slot.
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', PROBE_INTERVAL_MS: '3600000', ...extra };
  if (!env.ANVIL_BIN) env.ANVIL_BIN = path.join(root, 'anvil/node_modules/.bin/anvil');
  // Its own process group, so that anvil and the rooms it starts are stopped with it.
  const child = spawn(BACKEND_BIN, ['dev', '--http', '127.0.0.1:0', '--anvil-port', '0', '--data-dir', path.join(work, 'data')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env,
  });
  child.stderr.pipe(out);
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the backend printed no READY line within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`)), READY_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      out.write(`[stdout] ${line}\n`);
      if (!line.startsWith('READY ')) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line.slice('READY '.length)));
      } catch {
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
        tail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
      } catch {}
      reject(new Error(`the backend exited (${signal || code}) before it was ready:\n${tail}`));
    });
  });
  const stack = {
    ...ready,
    work,
    /** The local orchestrator's conferences' folder (each conference's Janus state and log). */
    rooms: path.join(work, 'data', 'rooms'),
    logFile,
    async stop({ keep = process.env.KEEP_STACK === '1' } = {}) {
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      try {
        child.kill('SIGTERM');
      } catch {}
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      // Whatever is left of its process group (the backend after a timeout, anvil), and any conference
      // server (each runs in a process group of its own) the backend did not remove.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
        try {
          const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
          if (args.some((a) => a.startsWith(`${stack.rooms}/`) && a.endsWith('/janus.jcfg'))) process.kill(Number(entry), 'SIGKILL');
        } catch {}
      }
      if (current === stack) current = null;
      if (keep) console.log(`stack kept for inspection: ${work}`);
      else rmSync(work, { recursive: true, force: true });
    },
  };
  current = stack;
  stack.accounts = await rpc('eth_accounts', []);
  stack.chainId = Number.parseInt(await rpc('eth_chainId', []), 16);
  stack.config = await (await fetch(new URL('/api/config', stack.web))).json();
  return stack;
}

/** A JSON-RPC call to the current stack's anvil; throws its error message. */
export async function rpc(method, params = [], stack = current) {
  if (!stack) throw new Error('no stack is running: call startStack() first');
  const response = await fetch(stack.rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** `GET pathname` from the stack's backend: its JSON (the answer must be 200). */
export async function api(pathname, stack = current) {
  const response = await fetch(new URL(pathname, stack.web));
  assert.equal(response.status, 200, `GET ${pathname} answered ${response.status}`);
  return response.json();
}

/** Waits until every running conference has been probed in its current session: its evidence. */
export async function waitForProbes(stack = current) {
  const deadline = Date.now() + 60_000;
  const running = (await api('/api/agreements?limit=100', stack)).filter((a) => a.status === 'active').map((a) => a.id);
  for (const id of running) {
    while (!((await api(`/api/agreements/${id}`, stack)).conference?.probes >= 1)) {
      assert.ok(Date.now() < deadline, `agreement ${id} was not probed within 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Moves the chain's clock `seconds` on and mines a block, once every running conference was probed. */
export async function advance(seconds) {
  await waitForProbes();
  await rpc('evm_increaseTime', [seconds]);
  await rpc('evm_mine', []);
}

/** Sends `functionName(args)` to `to` from `from` (an unlocked dev account) through anvil and waits
 *  with the viem client `chain` for its receipt, which must be a success. */
export async function transact(chain, { from, to, abi, functionName, args, value = 0n }) {
  const data = viem.encodeFunctionData({ abi, functionName, args });
  const hash = await rpc('eth_sendTransaction', [{ from, to, data, value: `0x${value.toString(16)}` }]);
  const receipt = await chain.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success', `${functionName} reverted`);
  return receipt;
}

/** Reads `GET /api/agreements/{id}` every 250 ms until `reached(view)`; returns that view, or fails
 *  after `timeout` ms saying `what` it waited for and `describe(view)` of the last one seen. */
export async function waitForAgreement(id, reached, { what, describe = (view) => view.status, timeout = 90_000, stack = current }) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    const response = await fetch(new URL(`/api/agreements/${id}`, stack.web));
    if (response.ok) {
      const view = await response.json();
      last = describe(view);
      if (reached(view)) return view;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`agreement ${id} did not reach ${what} within ${timeout / 1000} s (last: ${last})`);
}

/** Debian's Chromium, headless, with a fake camera and microphone. */
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS, headless: true });
}

/** Runs in the page before its scripts: the test wallet. `window.__testWallet` steers it. */
function installWallet({ account, chainId, refuseSwitch, reject }) {
  const listeners = new Map();
  const control = { account, chainId, refuseSwitch, rejectNext: reject ?? null, requests: [] };
  window.__testWallet = control;
  const emit = (event, value) => {
    for (const handler of listeners.get(event) ?? []) handler(value);
  };
  const fail = (code, message) => Object.assign(new Error(message), { code });
  const provider = {
    isTestWallet: true,
    async request({ method, params } = {}) {
      control.requests.push(method);
      const rejectNext = control.rejectNext;
      if (rejectNext && (rejectNext === true || rejectNext === '*' || rejectNext === method)) {
        control.rejectNext = null;
        throw fail(4001, 'User rejected the request.');
      }
      switch (method) {
        case 'eth_requestAccounts':
        case 'eth_accounts':
          return [control.account];
        case 'eth_chainId':
          return `0x${control.chainId.toString(16)}`;
        case 'net_version':
          return String(control.chainId);
        case 'wallet_switchEthereumChain': {
          if (control.refuseSwitch) throw fail(4001, 'User rejected the request.');
          const wanted = Number.parseInt(params[0].chainId, 16);
          if (wanted !== window.__serviceChainId) throw fail(4902, 'Unrecognized chain ID.');
          control.chainId = wanted;
          emit('chainChanged', params[0].chainId);
          return null;
        }
        case 'wallet_addEthereumChain':
          if (control.refuseSwitch) throw fail(4001, 'User rejected the request.');
          return null;
        default: {
          const answer = await window.__rpc(method, params ?? []);
          if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code, data: answer.error.data });
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
  control.switchAccount = (next) => {
    control.account = next;
    emit('accountsChanged', [next]);
  };
  const info = Object.freeze({ uuid: '00000000-0000-4000-8000-000000000001', name: 'Test Wallet', icon: 'data:image/svg+xml,<svg xmlns="http://www.w3.org/2000/svg"/>', rdns: 'test.wallet' });
  const announce = () => window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
  window.addEventListener('eip6963:requestProvider', announce);
  window.ethereum = provider;
  announce();
}

/** A new page in its own browser context (its own cookies: one per person). With `account`, the
 *  test wallet acts as that account; `chainId` makes it report another chain and refuse to switch
 *  (a wrong network); `reject` (a method name, or true for any) makes it reject that next request with
 *  4001. Without `account`, no wallet at all. `viewport` defaults to 1280×900; `prepare(context)` runs
 *  before the page opens (init scripts of a test's own). Uncaught page errors
 *  and any request to an origin other than the backend's and the RPC's collect in `page.errors`. */
export async function openPage(browser, url, { account, chainId, reject, viewport, prepare, stack = current } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 900 } });
  await prepare?.(context);
  if (account) {
    if (!stack) throw new Error('no stack is running: call startStack() first');
    await context.exposeFunction('__rpc', async (method, params) => {
      const response = await fetch(stack.rpc, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      });
      const body = await response.json();
      return body.error ? { error: body.error } : { result: body.result ?? null };
    });
    await context.addInitScript(`window.__serviceChainId = ${Number(stack.chainId)};`);
    await context.addInitScript(installWallet, {
      account,
      chainId: chainId ?? stack.chainId,
      refuseSwitch: chainId !== undefined && chainId !== stack.chainId,
      reject: reject ?? null,
    });
  }
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  // The app may talk to the backend and the chain's RPC only (the rooms' WebSockets are not requests).
  const allowed = stack && new Set([new URL(stack.web).origin, new URL(stack.rpc).origin]);
  page.on('request', (request) => {
    const target = request.url();
    if (allowed && /^https?:/.test(target) && !allowed.has(new URL(target).origin)) {
      page.errors.push(`a request to another origin: ${target}`);
    }
  });
  if (url && url !== 'about:blank') await page.goto(url);
  return page;
}

/** Saves a full-page PNG of `page` as target/browser-artifacts/<name>.png; returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Writes a benchmark's figures to target/bench/<name>.json in the shared format (tests/README.md,
 *  "Benchmarks"), with the command line that ran it (and the backend binary it used); returns the path. */
export function writeBenchFile(name, bench, figures) {
  const command = [
    ...(process.env.CONFERENCE_BACKEND_BIN ? [`CONFERENCE_BACKEND_BIN=${process.env.CONFERENCE_BACKEND_BIN}`] : []),
    'node',
    path.relative(process.cwd(), process.argv[1]) || process.argv[1],
    ...process.argv.slice(2),
  ].join(' ');
  const file = path.join(root, 'target/bench', `${name}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ bench, command, figures }, null, 2)}\n`);
  return file;
}
