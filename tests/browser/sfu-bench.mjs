// `make bench-sfu`: the local orchestrator's Janus SFU measured with real Chromium participants (fake
// camera and microphone at 320×180, 15 frames a second), inside a network namespace of its own
// (netns.mjs), on the local stack served by the backend build in CONFERENCE_BACKEND_BIN. Writes
// target/bench/sfu.json (tests/README.md, "Benchmarks"):
//
// - join time: the room page opened (navigation to /join/{id}) to its first remote video frame decoded
//   (getStats framesDecoded > 0), with one participant already publishing; connect, sign-in and pass
//   included, as a participant lives it; p50 and p99 over --joins samples;
// - SFU cost: Janus's CPU time (utime + stime of its process, /proc/<pid>/stat) over --window seconds
//   with n participants each publishing and receiving the others, per forwarded stream (one
//   participant's audio and video delivered to one other: n × (n − 1) of them); participants per core
//   in the model n × min(n − 1, 20) streams, beside Jitsi Videobridge's figure (one vCPU saturated at 18
//   users) and LiveKit's published one (about 19 per core: 150 publishers and 150 subscribers on 16 cores
//   at 85 % CPU);
// - recovery: the server SIGKILLed to the first successful probe stored after it (the service's default
//   probe interval, 2 s), p50 and max over --kills samples.
//
//   node tests/browser/sfu-bench.mjs [--joins 10] [--participants 2,4,6,8] [--window 20] [--kills 5]
import './netns.mjs';

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { api, launch, openPage, root, startStack } from './harness.mjs';
import { MEDIA_INTERFACE } from './netns.mjs';
import { buyConference, cpuSeconds, instrument, janusPids, joinRoom, mediaStats, waitDecoding } from './sfu.mjs';

const { values: options } = parseArgs({
  options: {
    joins: { type: 'string', default: '10' },
    participants: { type: 'string', default: '2,4,6,8' },
    window: { type: 'string', default: '20' },
    kills: { type: 'string', default: '5' },
  },
});
const JOINS = Number(options.joins);
const LEVELS = options.participants.split(',').map(Number);
const WINDOW_S = Number(options.window);
const KILLS = Number(options.kills);
const COMMAND = `node tests/browser/sfu-bench.mjs --joins ${JOINS} --participants ${LEVELS.join(',')} --window ${WINDOW_S} --kills ${KILLS}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The packets Janus had sent its participants at the last probe of agreement `id` (its stored detail:
 *  `… N packets in, M out`), and when that probe was taken (ms, wall clock). */
async function packetsSent(id) {
  const probes = (await api(`/api/agreements/${id}/probes`)).sessions.flatMap((s) => s.probes);
  for (const probe of probes.reverse()) {
    const counted = /(\d+) packets in, (\d+) out/.exec(probe.detail ?? '');
    if (counted) return { packets: Number(counted[2]), at: probe.at * 1000 };
  }
  return { packets: 0, at: Date.now() };
}
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const log = (...parts) => console.log(...parts);

const stack = await startStack({
  env: {
    JANUS_ICE_INTERFACE: MEDIA_INTERFACE,
    // The service's default probe interval, not the test stacks' hour: the packet counts and the
    // recovery after a kill are read from the probes, and this bench does not move the chain's clock.
    PROBE_INTERVAL_MS: '2000',
    // Every browser here signs in from 127.0.0.1, over twenty times a minute in the join loop (a
    // challenge and a verification each): above the default limit of 20 requests a minute per client,
    // which refuses the tenth join with a 429.
    SIGNIN_PER_CLIENT_PER_MINUTE: '1000',
  },
});
const browser = await launch();
const figures = [];
try {
  // Anvil's ten dev accounts: the customer and up to nine others (the providers' accounts join too).
  const needed = Math.max(...LEVELS, 2);
  const others = [5, 6, 7, 8, 9, 0, 2, 3, 4].map((i) => stack.accounts[i]);
  const participants = [stack.customer, ...others].slice(0, needed);
  if (participants.length < needed) throw new Error(`only ${participants.length} dev accounts to join with`);

  // The customer buys a dynamic-price conference and registers the others, as on its page.
  const { id } = await buyConference(browser, stack, participants.slice(1));
  const joinUrl = new URL(`/join/${id}`, stack.web).href;
  const join = (who) => joinRoom(browser, stack, id, who);

  // --- join time --------------------------------------------------------------------------------------
  const host = await join(participants[1]);
  const joinTimes = [];
  for (let i = 0; i < JOINS; i += 1) {
    const started = performance.now();
    const page = await openPage(browser, joinUrl, { account: participants[0], prepare: instrument });
    await page.click('#join');
    for (;;) {
      const stats = await mediaStats(page);
      if (stats.inboundVideo.some((s) => s.framesDecoded > 0)) break;
      const shown = await page.locator('#error').textContent();
      if (shown) throw new Error(`join ${i + 1}: the page shows an error: ${shown}`);
      if (performance.now() - started > 60_000) throw new Error('no remote frame decoded within 60 s');
      await sleep(20);
    }
    joinTimes.push(performance.now() - started);
    await page.click('#leave');
    await page.context().close();
    log(`join ${i + 1}: ${joinTimes.at(-1).toFixed(0)} ms`);
  }
  joinTimes.sort((a, b) => a - b);
  const joinNote = 'the room page opened (navigation to /join/{id}) to its first remote video frame decoded, one participant already publishing; wallet connect, sign-in (one signature) and the pass included';
  figures.push(
    { id: 'sfu.join.p50', group: 'SFU (Janus): join', label: 'room page opened to first remote frame decoded, p50', unit: 'ms', samples: [quantile(joinTimes, 0.5)], target: null, note: joinNote },
    { id: 'sfu.join.p99', group: 'SFU (Janus): join', label: 'room page opened to first remote frame decoded, p99', unit: 'ms', samples: [quantile(joinTimes, 0.99)], target: null, note: `${joinTimes.length} joins` },
  );
  await host.click('#leave');
  await host.context().close();

  // --- SFU cost ---------------------------------------------------------------------------------------
  let perStream = null;
  const pages = [];
  for (const n of LEVELS) {
    while (pages.length < n) pages.push(await join(participants[pages.length]));
    for (const page of pages) await waitDecoding(page, n - 1, { timeout: 90_000 });
    const [pid] = janusPids(stack.rooms, id);
    const before = { cpu: cpuSeconds(pid), at: performance.now(), sent: await packetsSent(id) };
    await sleep(WINDOW_S * 1000);
    const after = { cpu: cpuSeconds(pid), at: performance.now(), sent: await packetsSent(id) };
    // Everyone still receives everyone: the window measured a full conference.
    for (const page of pages) await waitDecoding(page, n - 1, { timeout: 30_000 });
    const seconds = (after.at - before.at) / 1000;
    const share = ((after.cpu - before.cpu) / seconds) * 100;
    const streams = n * (n - 1);
    perStream = share / streams;
    // The probes' own count of the packets Janus sent the participants, so the cost can be read per packet.
    if (after.sent.at <= before.sent.at) throw new Error(`no probe of the conference within the ${WINDOW_S} s window`);
    const packetRate = (after.sent.packets - before.sent.packets) / ((after.sent.at - before.sent.at) / 1000);
    log(`${n} participants: Janus ${share.toFixed(2)} % of a core for ${streams} streams (${packetRate.toFixed(0)} packets/s out), ${perStream.toFixed(3)} % each`);
    figures.push(
      { id: `sfu.cost.janusCpu.${n}`, group: 'SFU (Janus): cost', label: `Janus CPU with ${n} participants (${streams} forwarded streams)`, unit: '%', samples: [share], target: null, note: `% of one core, utime + stime of the Janus process over ${WINDOW_S} s, 320×180 at 15 frames/s with audio` },
      { id: `sfu.cost.perStream.${n}`, group: 'SFU (Janus): cost', label: `Janus CPU per forwarded stream, ${n} participants`, unit: '%', samples: [perStream], target: null, note: 'a stream: one participant\'s audio and video delivered to one other' },
      { id: `sfu.cost.packetsOut.${n}`, group: 'SFU (Janus): cost', label: `RTP packets Janus sent its participants a second, ${n} participants`, unit: 'count', samples: [packetRate], target: null, note: 'from the probes\' Admin API counters (their stored detail) at the window\'s ends: what the CPU figure is per' },
    );
  }
  // Streams one core forwards at the largest level's cost, and the participants that is in the model
  // n × min(n − 1, 20): n(n − 1) = S while n ≤ 21, else 20 n = S.
  const perCore = 100 / perStream;
  const participantsPerCore = perCore <= 21 * 20 ? (1 + Math.sqrt(1 + 4 * perCore)) / 2 : perCore / 20;
  log(`one core forwards ${perCore.toFixed(0)} streams: ${participantsPerCore.toFixed(1)} participants per core`);
  figures.push(
    { id: 'sfu.cost.streamsPerCore', group: 'SFU (Janus): cost', label: 'forwarded streams one core carries (at the largest level\'s cost per stream)', unit: 'count', samples: [perCore], target: null, note: `from ${LEVELS.at(-1)} participants` },
    { id: 'sfu.cost.participantsPerCore', group: 'SFU (Janus): cost', label: 'participants per core, model n × min(n − 1, 20) streams', unit: 'participants/core', samples: [participantsPerCore], target: null, note: 'this project\'s Janus at 320×180; compare the two rows below' },
    { id: 'sfu.reference.jvb', group: 'SFU (Janus): cost', label: 'reference: Jitsi Videobridge, one vCPU saturated at 18 users (the seeds\' figure)', unit: 'participants/core', samples: [18], target: null, note: 'published figure, not measured here' },
    { id: 'sfu.reference.livekit', group: 'SFU (Janus): cost', label: 'reference: LiveKit meeting benchmark, 150 publishers and 150 subscribers on 16 cores at 85 % CPU', unit: 'participants/core', samples: [19], target: null, note: 'published figure (about 19 per core), not measured here' },
  );

  // --- recovery ---------------------------------------------------------------------------------------
  const recoveries = [];
  for (let i = 0; i < KILLS; i += 1) {
    for (const page of pages.slice(0, 2)) await waitDecoding(page, 1, { timeout: 60_000 });
    const seen = (await api(`/api/agreements/${id}/probes`)).sessions.flatMap((s) => s.probes).length;
    const [pid] = janusPids(stack.rooms, id);
    const killed = performance.now();
    process.kill(pid, 'SIGKILL');
    let failed = false;
    for (;;) {
      const probes = (await api(`/api/agreements/${id}/probes`)).sessions.flatMap((s) => s.probes).slice(seen);
      failed ||= probes.some((p) => !p.ok);
      if (failed && probes.some((p, j) => p.ok && probes.slice(0, j).some((q) => !q.ok))) break;
      if (performance.now() - killed > 60_000) throw new Error('no good probe within 60 s of the kill');
      await sleep(50);
    }
    recoveries.push(performance.now() - killed);
    log(`recovery ${i + 1}: ${recoveries.at(-1).toFixed(0)} ms`);
  }
  recoveries.sort((a, b) => a - b);
  const recoveryNote = 'SIGKILL of the conference\'s Janus to the first successful probe stored after a failed one (read from GET /api/agreements/{id}/probes every 50 ms), at the default probe interval of 2 s';
  figures.push(
    { id: 'sfu.recovery.p50', group: 'SFU (Janus): recovery', label: 'server killed to its first good probe, p50', unit: 'ms', samples: [quantile(recoveries, 0.5)], target: null, note: recoveryNote },
    { id: 'sfu.recovery.max', group: 'SFU (Janus): recovery', label: 'server killed to its first good probe, max', unit: 'ms', samples: [recoveries.at(-1)], target: null, note: `${recoveries.length} kills` },
  );
  for (const page of pages) await page.context().close();
} finally {
  await browser.close();
  await stack.stop();
}

const out = path.join(root, 'target/bench');
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, 'sfu.json'), `${JSON.stringify({ bench: 'sfu', command: COMMAND, figures }, null, 2)}\n`);
log(`wrote ${path.join(out, 'sfu.json')}`);
