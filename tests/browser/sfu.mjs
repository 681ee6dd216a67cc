// What the conference tests and the SFU benchmark share: the pages' media instrumented and measured
// (every peer connection a page opens, each inbound video's decoded frames), and the conference's Janus
// server found (its process by command line, its state file written by the backend).

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { openPage } from './harness.mjs';

/** The customer (`stack.customer`) buys a dynamic-price conference on the offers page and, once it is
 *  active, registers `participants` on its agreement page in `quality`: the agreement's id and the
 *  customer's page (on the agreement, where `#stop` is). */
export async function buyConference(browser, stack, participants, quality = 'sd') {
  const page = await openPage(browser, stack.web, { account: stack.customer });
  await page.locator('[data-testid="choose-1"]').waitFor();
  await page.click('#connect');
  await page.locator('#account').waitFor();
  await page.click('[data-testid="choose-1"]');
  await page.locator('#pay:not([disabled])').waitFor();
  await page.click('#pay');
  await page.waitForURL(/\/agreement\/\d+$/, { timeout: 30_000 });
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  await page.locator('#status[data-status="active"]').waitFor({ timeout: 90_000 });
  const rows = page.locator('[data-testid="participant-row"]');
  await rows.first().waitFor();
  while ((await rows.count()) < participants.length) await page.click('#add-participant');
  for (const [i, who] of participants.entries()) await rows.nth(i).locator('input[name=address]').fill(who);
  await page.selectOption('#participants-quality', quality);
  await page.click('#register');
  await page.locator(`#participants-result[data-count="${participants.length}"]`).waitFor({ timeout: 30_000 });
  return { id, page };
}

/** Opens agreement `id`'s room as `who` (instrumented) and joins: the page, once connected. */
export async function joinRoom(browser, stack, id, who) {
  const page = await openPage(browser, new URL(`/join/${id}`, stack.web).href, { account: who, prepare: instrument });
  await page.click('#join');
  await page.locator('#room[data-state="connected"]').waitFor({ timeout: 60_000 });
  return page;
}

/** Runs in every page of `context` before its scripts: the camera at 320×180, 15 frames a second (two
 *  cores carry six browsers), and every RTCPeerConnection the page makes kept in `window.__pcs`. */
export async function instrument(context, { width = 320, height = 180, frameRate = 15 } = {}) {
  await context.addInitScript(
    ({ width, height, frameRate }) => {
      const pcs = [];
      window.__pcs = pcs;
      const Native = window.RTCPeerConnection;
      window.RTCPeerConnection = function (...args) {
        const pc = new Native(...args);
        pcs.push(pc);
        return pc;
      };
      window.RTCPeerConnection.prototype = Native.prototype;
      const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (constraints = {}) =>
        getUserMedia(constraints.video ? { ...constraints, video: { width, height, frameRate } } : constraints);
    },
    { width, height, frameRate },
  );
}

/** The page's peer connections as getStats reports them: state, the selected pair's remote address and
 *  port, and each inbound video stream's decoded frames. */
export async function mediaStats(page) {
  return page.evaluate(async () => {
    const result = { pcs: [], inboundVideo: [] };
    for (const pc of window.__pcs ?? []) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      let remote = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const candidate = pair && byId.get(pair.remoteCandidateId);
          if (candidate) remote = { address: candidate.address ?? candidate.ip, port: candidate.port };
        }
        if (s.type === 'inbound-rtp' && s.kind === 'video') result.inboundVideo.push({ id: s.id, mid: s.mid, framesDecoded: s.framesDecoded ?? 0 });
      });
      result.pcs.push({ state: pc.connectionState, remote });
    }
    return result;
  });
}

/** Waits until the page decodes frames on `streams` inbound video streams, each rising between two
 *  looks `gap` ms apart; returns the two looks. */
export async function waitDecoding(page, streams, { timeout = 60_000, gap = 1_500 } = {}) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    const first = await mediaStats(page);
    await new Promise((resolve) => setTimeout(resolve, gap));
    const second = await mediaStats(page);
    const before = new Map(first.inboundVideo.map((s) => [s.id, s.framesDecoded]));
    const rising = second.inboundVideo.filter((s) => s.framesDecoded > (before.get(s.id) ?? Infinity));
    last = { first, second, rising: rising.length };
    if (rising.length >= streams) return last;
  }
  throw new Error(`the page did not decode ${streams} rising video streams within ${timeout / 1000} s: ${JSON.stringify(last)}`);
}

/** The Janus processes of agreement `id`'s conference (by their command line, as the backend finds
 *  them): pids. */
export function janusPids(rooms, id) {
  const config = path.join(rooms, String(id), 'janus.jcfg');
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.split('\0').includes(config)) pids.push(Number(entry));
  }
  return pids;
}

/** The backend's state file of agreement `id`'s server (ports; its media ports start at
 *  `rtpFirstPort`, 100 of them). */
export function serverInfo(rooms, id) {
  return JSON.parse(readFileSync(path.join(rooms, String(id), 'janus.json'), 'utf8'));
}

/** Total CPU time (user + system) of process `pid` so far, in seconds (/proc/<pid>/stat, 100 Hz ticks). */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
