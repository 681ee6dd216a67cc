// The conference room on the local orchestrator's Janus SFU, in headless Chromium, inside a network
// namespace of the file's own (netns.mjs): six participants (the customer and five it registered, fake
// camera and microphone) in one conference, each decoding the five others through the server; every
// peer connection of every page goes to the server; an unregistered address is refused; then the
// server is killed mid-conference, the backend brings it back by itself, every page reconnects, and
// the settlement's availability is exactly what the stored probes add up to.
import './netns.mjs';

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, launch, openPage, screenshot, startStack, waitForAgreement } from './harness.mjs';
import { MEDIA_ADDRESS, MEDIA_INTERFACE } from './netns.mjs';
import { buyConference, janusPids, joinRoom, serverInfo, waitDecoding } from './sfu.mjs';

const PARTICIPANTS = 5;
/** The bound on a conference's recovery this test holds the service to: the server's death to every
 *  page decoding the others again. */
const RECOVERY_BOUND_MS = 30_000;

let stack;
let browser;
let customerPage;
let id;
const rooms = []; // [{ who, page }]

const log = (...parts) => console.log(...parts);

before(async () => {
  // Probes every 300 ms (the default is 2 s), so that the recovery's downtime is measured finely.
  stack = await startStack({ env: { JANUS_ICE_INTERFACE: MEDIA_INTERFACE, PROBE_INTERVAL_MS: '300' } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('six participants meet through the SFU: each decodes the five others, over connections to the server only', { timeout: 600_000 }, async () => {
  const customer = stack.customer;
  const participants = stack.accounts.slice(5, 5 + PARTICIPANTS);
  ({ id, page: customerPage } = await buyConference(browser, stack, participants));

  const started = Date.now();
  for (const who of [customer, ...participants]) rooms.push({ who, page: await joinRoom(browser, stack, id, who) });
  log(`  ${rooms.length} participants joined in ${Date.now() - started} ms`);

  const server = serverInfo(stack.rooms, id);
  const everyone = [customer, ...participants].map((a) => a.toLowerCase()).sort();
  for (const { who, page } of rooms) {
    const { second } = await waitDecoding(page, PARTICIPANTS);
    const decoding = second.inboundVideo.filter((s) => s.framesDecoded > 0);
    assert.equal(decoding.length, PARTICIPANTS, `${who} decodes exactly the five others: ${JSON.stringify(second.inboundVideo)}`);
    // Every peer connection of the page goes to the SFU (its address, its media ports): one to
    // publish, one for the multistream subscription; none to another browser.
    assert.ok(second.pcs.length >= 1 && second.pcs.length <= 2, `${who}: ${JSON.stringify(second.pcs)}`);
    for (const pc of second.pcs) {
      assert.equal(pc.state, 'connected', `${who}: ${JSON.stringify(pc)}`);
      assert.equal(pc.remote?.address, MEDIA_ADDRESS, `${who}: ${JSON.stringify(pc)}`);
      assert.ok(pc.remote.port >= server.rtpFirstPort && pc.remote.port < server.rtpFirstPort + 100, `${who}: not the server's port: ${JSON.stringify(pc)}`);
    }
    const names = await page.locator('#participants li').evaluateAll((items) => items.map((li) => li.dataset.address.toLowerCase()));
    assert.deepEqual(names.sort(), everyone, `${who} lists everyone by address`);
  }
  await screenshot(rooms[1].page, 'room-six-participants');

  // An address the customer did not register gets no pass, and so no way into the server.
  const stranger = await openPage(browser, new URL(`/join/${id}`, stack.web).href, { account: stack.accounts[3] });
  await stranger.click('#join');
  await stranger.locator('#join-refused:not([hidden])').waitFor({ timeout: 30_000 });
  assert.match(await stranger.textContent('#join-refused'), /is not registered for this conference/);
  assert.equal(await stranger.locator('#room').count(), 0);
  await screenshot(stranger, 'join-refused');
  assert.deepEqual(stranger.errors, []);
  await stranger.context().close();

  // The controls still work on the SFU: muting and turning the camera off are local, a left participant
  // leaves everyone's list.
  const { page: last } = rooms[rooms.length - 1];
  await last.click('#mute');
  assert.equal(await last.getAttribute('#mute', 'data-state'), 'off');
  await last.click('#camera');
  assert.equal(await last.getAttribute('#camera', 'data-state'), 'off');
  await last.click('#camera');
  await last.click('#mute');
});

test('the server killed mid-conference is brought back, every page reconnects, and availability is what the probes say', { timeout: 600_000 }, async () => {
  assert.ok(id && rooms.length, 'the first test set the conference up');
  // Three pages are enough to see the reconnection (and cheaper on two cores): the others leave first.
  for (const { page } of rooms.splice(3)) {
    await page.click('#leave');
    await page.context().close();
  }
  for (const { page } of rooms) await waitDecoding(page, rooms.length - 1);

  const [pid] = janusPids(stack.rooms, id);
  assert.ok(pid, 'the conference has its Janus process');
  const killed = Date.now();
  process.kill(pid, 'SIGKILL');
  let replaced;
  while (!(replaced = janusPids(stack.rooms, id).find((p) => p !== pid))) {
    assert.ok(Date.now() - killed < RECOVERY_BOUND_MS, 'no new server within the bound');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const serverBack = Date.now() - killed;
  for (const { who, page } of rooms) {
    await page.locator('#room[data-state="connected"][data-reconnects="1"]').waitFor({ timeout: RECOVERY_BOUND_MS });
    await waitDecoding(page, rooms.length - 1, { timeout: RECOVERY_BOUND_MS });
    log(`  ${who.slice(0, 8)} decodes again ${Date.now() - killed} ms after the kill`);
  }
  const recovered = Date.now() - killed;
  log(`  server ${pid} killed: a new one (${replaced}) ${serverBack} ms later, every page decoding the others ${recovered} ms later`);
  assert.ok(recovered < RECOVERY_BOUND_MS, `recovered in ${recovered} ms`);
  const metrics = await (await fetch(new URL('/metrics', stack.web))).text();
  assert.match(metrics, /^conference_redeploys_total 1$/m);
  assert.match(metrics, /^conference_lost_total 1$/m);

  // The customer stops; the settlement reports exactly the share of slots with a successful probe.
  await customerPage.click('#stop');
  const settled = await waitForAgreement(id, (view) => view.status === 'settled', { what: 'settled' });
  const evidence = await api(`/api/agreements/${id}/probes`);
  const session = evidence.sessions.find((s) => s.session === settled.session);
  const ok = session.probes.filter((p) => p.ok).length;
  const failed = session.probes.filter((p) => !p.ok);
  assert.ok(failed.length >= 1, 'the downtime was measured');
  assert.ok(failed.some((p) => /not running|conference removed|conference deploying/.test(p.detail)), JSON.stringify(failed.slice(0, 3)));
  assert.ok(session.probes.every((p) => p.detail), 'every probe stores what it measured');
  assert.ok(session.probes.some((p) => /forwarding: \+\d+ packets/.test(p.detail)), `probes saw media forwarded: ${JSON.stringify(session.probes.slice(0, 40).map((p) => p.detail))}`);
  // A slot of the probe interval is up when it holds a successful probe, down otherwise.
  const m = session.measurement;
  assert.equal(settled.availabilityBps, Math.floor((m.okSlots * 10_000) / m.due));
  assert.equal(settled.availabilityBps, m.availabilityBps);
  log(`  availability ${settled.availabilityBps} bps: ${m.okSlots} of ${m.due} slots up (${ok} of ${session.probes.length} probes, ${failed.length} failed)`);
  assert.ok(settled.availabilityBps >= 7_500, 'a short outage does not refund the customer in full');

  for (const { page } of rooms) {
    await page.locator('#join-title').waitFor();
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});
