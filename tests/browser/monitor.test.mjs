// Availability measured by an independent monitor, in headless Chromium against the real local stack
// (harness.mjs). The test registers dev account 6 as a Monitoring provider, opens an offer that names it
// beside the two demo providers, and then acts as that monitor: once a customer's conference has ended,
// it signs an EIP-712 Availability report over records of its own (one probe a second, every fifth
// failed: about 80 %) and hands it in; the service settles with it. Then: the agreement page says who measured
// (the monitor, by address; the operator for a demo offer), how the figure is computed, and links to the
// evidence, which the audit page opens; the provider page shows the monitor its report, settled; the
// audit page recomputes the report's commitment and figure and says they match, and flags a record the
// service serves altered after the settlement. A monitored conference nobody reported on is settled
// overdue by the customer at 0: both pages say it has no evidence, and the audit does not flag it.
//
//   node --test tests/browser/monitor.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { abi, advance, api, launch, openPage, rpc, screenshot, startStack, transact, viem, waitForAgreement } from './harness.mjs';

const { createPublicClient, encodePacked, http, keccak256 } = viem;
const escrowAbi = abi.ConferenceEscrow;
const bookAbi = abi.OfferBook;
const registryAbi = abi.ProviderRegistry;

const log = (...args) => console.log(...args);
let stack;
let browser;
let chain;
let accounts;
let cfg;
let monitor; // dev account 6: the Monitoring provider
let monitored; // { id, startedAt, endedAt, intervalMs, records, availabilityBps, evidence }
let operated; // an agreement on a demo offer (no monitor)

/** The monitor's probe interval, and which of its probes fail: every fifth (about 80 % available). */
const INTERVAL_MS = 1000;
const fails = (k) => k % 5 === 0;

const read = (address, abi, functionName, args = []) => chain.readContract({ address, abi, functionName, args });
const send = (from, to, abi, functionName, args, value) => transact(chain, { from, to, abi, functionName, args, value });

/** The commitment as availability.rs documents it, encoded here with viem's encodePacked (the page
 *  builds its bytes by hand): keccak256(uint32 interval ‖ (uint64 atMs ‖ uint8 ok)…). */
const commitment = (intervalMs, records) =>
  keccak256(encodePacked(['uint32', ...records.flatMap(() => ['uint64', 'uint8'])], [intervalMs, ...records.flatMap((r) => [BigInt(r.atMs), r.ok ? 1 : 0])]));

/** Registers `account` as a Monitoring provider and opens a dynamic-price offer naming it with the two
 *  demo providers (ids 1 and 2, dev accounts 2 and 4; account 0 owns offers). Returns its terms id. */
async function openMonitoredOffer(account) {
  await send(account, cfg.registry, registryAbi, 'register', [2, account, 0b111, true]);
  const monitorId = Number(await read(cfg.registry, registryAbi, 'idOf', [account]));
  const params = { model: 1, tokenId: 0, maxDuration: 3600, margin: 10n ** 9n, minimumCharge: 0n, gdprSurchargeBps: 2000, regionSurchargeBps: 1000 };
  await send(accounts[0], cfg.book, bookAbi, 'createOffer', [params, [1, 2, monitorId]]);
  const offerId = Number(await read(cfg.book, bookAbi, 'offerCount'));
  for (const [from, component] of [[accounts[2], 3n * 10n ** 9n], [accounts[4], 2n * 10n ** 9n], [account, 10n ** 9n]]) {
    await send(from, cfg.book, bookAbi, 'setComponent', [offerId, component]);
  }
  await send(accounts[0], cfg.book, bookAbi, 'openOffer', [offerId]);
  const { termsId } = await read(cfg.book, bookAbi, 'offerOf', [offerId]);
  const terms = await read(cfg.escrow, escrowAbi, 'termsOf', [termsId]);
  assert.equal(terms.monitor.toLowerCase(), account.toLowerCase(), 'the terms name the Monitoring provider as their monitor');
  log(`offer ${offerId} (terms ${termsId}) names monitor ${account} (provider ${monitorId})`);
  return termsId;
}

/** The customer signs `termsId` (no constraints). Returns the agreement's id. */
async function sign(termsId) {
  const [deposit] = await read(cfg.escrow, escrowAbi, 'quote', [termsId, 0, false, 0n]);
  await send(accounts[1], cfg.escrow, escrowAbi, 'sign', [termsId, 0, false], deposit);
  return Number(await read(cfg.escrow, escrowAbi, 'agreementCount'));
}

/** What the monitor hands in for agreement `id`'s first conference: its records over the conference's
 *  period on the chain, the figure and commitment they give, signed by the monitor's key (anvil signs
 *  for its unlocked dev accounts). */
async function report(id) {
  const a = await read(cfg.escrow, escrowAbi, 'agreementOf', [BigInt(id)]);
  const startedAt = Number(a.startedAt);
  const endedAt = Number(a.endedAt);
  const due = Math.max(1, Math.floor(((endedAt - startedAt) * 1000) / INTERVAL_MS));
  const records = Array.from({ length: due }, (_, k) => ({ atMs: startedAt * 1000 + k * INTERVAL_MS + 250, ok: !fails(k) }));
  const availabilityBps = Math.floor((records.filter((r) => r.ok).length * 10_000) / due);
  const evidence = commitment(INTERVAL_MS, records);
  const typed = {
    types: {
      EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'version', type: 'string' }, { name: 'chainId', type: 'uint256' }, { name: 'verifyingContract', type: 'address' }],
      Availability: [
        { name: 'agreementId', type: 'uint256' }, { name: 'session', type: 'uint32' }, { name: 'startedAt', type: 'uint40' },
        { name: 'endedAt', type: 'uint40' }, { name: 'availabilityBps', type: 'uint16' }, { name: 'evidence', type: 'bytes32' },
      ],
    },
    primaryType: 'Availability',
    domain: { name: 'ConferenceEscrow', version: '1', chainId: cfg.chainId, verifyingContract: cfg.escrow },
    message: { agreementId: id, session: 1, startedAt, endedAt, availabilityBps, evidence },
  };
  const signature = await rpc('eth_signTypedData_v4', [monitor, JSON.stringify(typed)]);
  return { id, startedAt, endedAt, intervalMs: INTERVAL_MS, records, availabilityBps, evidence, signature };
}

before(async () => {
  stack = await startStack();
  browser = await launch();
  cfg = stack.config;
  chain = createPublicClient({ transport: http(stack.rpc) });
  accounts = stack.accounts;
  monitor = accounts[6];

  const termsId = await openMonitoredOffer(monitor);
  const id = await sign(termsId);
  await waitForAgreement(id, (v) => v.chainStatus === 'active' && v.status === 'active', { what: 'active' });
  await advance(60);
  await send(accounts[1], cfg.escrow, escrowAbi, 'stop', [BigInt(id)]);
  await waitForAgreement(id, (v) => v.chainStatus === 'ended', { what: 'ended on-chain', describe: (v) => v.chainStatus });
  // Without the monitor's report the service does not settle a monitored conference.
  assert.equal((await api(`/api/agreements/${id}`)).chainStatus, 'ended');

  monitored = await report(id);
  const answer = await fetch(new URL(`/api/agreements/${id}/report`, stack.web), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      session: 1, startedAt: monitored.startedAt, endedAt: monitored.endedAt, availabilityBps: monitored.availabilityBps,
      evidence: monitored.evidence, signature: monitored.signature, intervalMs: monitored.intervalMs, records: monitored.records,
    }),
  });
  assert.equal(answer.status, 202, await answer.text());
  await waitForAgreement(id, (v) => v.chainStatus === 'settled', { what: 'settled with the report', describe: (v) => v.chainStatus });
  const [settled] = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
  assert.equal(settled.args.evidence, monitored.evidence, 'the settlement emits the monitor’s commitment');
  assert.equal(settled.args.availabilityBps, monitored.availabilityBps, 'the settlement follows the monitor’s figure');
  log(`agreement ${id}: ${monitored.records.length} records, ${monitored.availabilityBps} bps, evidence ${monitored.evidence}`);

  // A demo offer's agreement (no monitor): the operator measures it.
  const { termsId: demoTerms } = await read(cfg.book, bookAbi, 'offerOf', [2]);
  operated = await sign(demoTerms);
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop?.();
});

/** Opens `path` with no wallet and waits until `selector` is there. */
async function open(path, selector, setup) {
  const page = await openPage(browser, 'about:blank');
  if (setup) await setup(page);
  await page.goto(new URL(path, stack.web).href);
  await page.locator(selector).waitFor({ timeout: 60_000 });
  return page;
}

test('the agreement page says who measured the availability and how, and links to the evidence, which the audit page opens', { timeout: 120_000 }, async () => {
  const page = await open(`/agreement/${monitored.id}`, '#evidence-list li[data-session="1"]');
  const who = page.locator('#measured-by');
  assert.equal((await who.getAttribute('data-monitor')).toLowerCase(), monitor.toLowerCase());
  assert.match(await who.textContent(), /independent monitor/);
  assert.ok((await who.textContent()).toLowerCase().includes(monitor.toLowerCase()), 'the monitor’s address is shown');
  const how = await page.textContent('#availability-how');
  assert.match(how, /slots of the monitor’s probe interval/);
  assert.match(how, /without one, probe failed or missing, counts as down/);
  assert.match(how, /Below 75% you pay nothing/);
  assert.match(how, /If no report of the monitor settles it within 24 h of its end, it settles at 0%/);
  assert.equal(await page.getAttribute('#evidence-list li[data-session="1"]', 'data-evidence'), monitored.evidence);
  assert.equal(await page.getAttribute('#evidence-link', 'href'), `/audit#agreement-${monitored.id}`);
  assert.equal(await page.getAttribute('#evidence-json', 'href'), `/api/agreements/${monitored.id}/probes`);
  assert.equal(await page.getAttribute('#availability', 'data-bps'), String(monitored.availabilityBps));
  await screenshot(page, 'agreement-measured-by-monitor');

  // The link opens the audit page on this agreement's evidence: the monitor's report, matching.
  await page.click('#evidence-link');
  const evidence = page.locator(`tr[data-evidence-for="${monitored.id}"]`);
  await evidence.locator('table.evidence-checks tr[data-evidence-session="1"]').waitFor({ timeout: 60_000 });
  assert.equal(new URL(page.url()).hash, `#agreement-${monitored.id}`);
  assert.equal(await evidence.isVisible(), true, 'the agreement’s evidence is open');
  const check = evidence.locator('table.evidence-checks tr[data-evidence-session="1"]');
  assert.equal(await check.getAttribute('data-state'), 'matches');
  assert.match(await check.textContent(), /the monitor/);
  assert.equal(await evidence.locator('table.reports tr[data-report-session="1"] [data-evidence]').getAttribute('data-evidence'), monitored.evidence);
  assert.deepEqual(page.errors, []);
  await page.close();

  // An offer without a monitor: the operator measures, at its probe interval.
  const other = await open(`/agreement/${operated}`, '#measured-by');
  await other.locator('#availability-how:has-text("24 h")').waitFor();
  assert.equal(await other.getAttribute('#measured-by', 'data-monitor'), '');
  assert.match(await other.textContent('#measured-by'), /Measured by the operator/);
  const operatorHow = await other.textContent('#availability-how');
  assert.ok(operatorHow.includes(`slots of the probe interval (${cfg.probeIntervalMs / 1000} s)`), operatorHow);
  assert.match(operatorHow, /If the operator does not settle it within 24 h of its end, anyone may settle it, at full availability/);
  assert.deepEqual(other.errors, []);
  await other.close();
});

test('the provider page shows a monitor its reports, each settled with it on-chain', { timeout: 120_000 }, async () => {
  const page = await openPage(browser, new URL('/provider', stack.web).href, { account: monitor });
  await page.locator('#provider-connect').click();
  const row = page.locator(`#reports-table tr[data-report-agreement="${monitored.id}"]`);
  await row.waitFor({ timeout: 60_000 });
  assert.equal(await page.getAttribute('#provider-role', 'data-role'), '2');
  assert.equal(await page.locator('#reports-table tbody tr').count(), 1);
  assert.equal(await row.getAttribute('data-report-session'), '1');
  assert.equal(await row.getAttribute('data-bps'), String(monitored.availabilityBps));
  assert.equal(await row.getAttribute('data-evidence'), monitored.evidence);
  assert.equal(await row.getAttribute('data-onchain'), 'settled');
  const text = await row.textContent();
  assert.ok(text.includes(`${monitored.records.length} at ${INTERVAL_MS} ms`) && text.includes('settled with this report'), text);
  assert.equal(await page.locator('#reports-table caption').count(), 1);
  await screenshot(page, 'provider-monitor-reports');
  assert.deepEqual(page.errors, []);
  await page.close();

  // A provider of another role has no reports section.
  const other = await openPage(browser, new URL('/provider', stack.web).href, { account: accounts[2] });
  await other.locator('#provider-connect').click();
  await other.locator('#income').waitFor({ timeout: 60_000 });
  assert.equal(await other.locator('#reports').count(), 0);
  await other.close();
});

test('the audit page recomputes the monitor’s evidence: it matches, and a record served altered is flagged', { timeout: 120_000 }, async () => {
  const row = (page) => page.locator(`tr.agreement[data-agreement-id="${monitored.id}"]`);
  const clean = await open('/audit', '#audit-summary[data-agreements]');
  assert.equal(await clean.getAttribute('#self-check', 'data-failures'), '0', await clean.textContent('#self-check'));
  assert.equal(await row(clean).getAttribute('data-mismatch'), null);
  assert.equal(await row(clean).locator('[data-evidence]').getAttribute('data-evidence'), 'matches');
  assert.equal(await clean.getAttribute('#audit-summary', 'data-evidence-checked'), await clean.getAttribute('#audit-summary', 'data-evidence-matches'));
  await clean.close();

  // The service serves the report with one record's outcome changed after the settlement.
  const altered = monitored.records.findIndex((r) => r.ok);
  const page = await open('/audit', '#audit-summary[data-agreements]', (p) => p.route(`**/api/agreements/${monitored.id}/probes`, async (route) => {
    const response = await route.fetch();
    const view = await response.json();
    view.reports[0].records[altered].ok = false;
    await route.fulfill({ response, json: view });
  }));
  assert.equal(await page.getAttribute('#audit-summary', 'data-flagged'), '1');
  const flagged = page.locator('tr.agreement[data-mismatch]');
  assert.equal(await flagged.getAttribute('data-agreement-id'), String(monitored.id));
  // Its slot held its only probe, so the figure moves too.
  assert.equal(await flagged.getAttribute('data-mismatch'), 'evidence measured');
  assert.equal(await flagged.locator('[data-evidence]').getAttribute('data-evidence'), 'differs');
  const detail = page.locator(`tr.mismatch-detail[data-mismatch-for="${monitored.id}"]`);
  const evidenceText = await detail.locator('li[data-figure="evidence"][data-source="records"]').textContent();
  const changed = monitored.records.map((r, k) => (k === altered ? { ...r, ok: false } : r));
  assert.ok(evidenceText.includes(`conference 1: the settlement committed to ${monitored.evidence}`), evidenceText);
  assert.ok(evidenceText.includes(`give ${commitment(INTERVAL_MS, changed)}`), evidenceText);
  const okSlots = changed.filter((r) => r.ok).length;
  const recomputedBps = Math.floor((okSlots * 10_000) / monitored.records.length);
  assert.equal(await detail.locator('li[data-figure="measured"]').count(), 1);
  await page.locator(`button[data-toggle="${monitored.id}"]`).click();
  const check = page.locator(`tr[data-evidence-for="${monitored.id}"] table.evidence-checks tr[data-evidence-session="1"]`);
  assert.equal(await check.getAttribute('data-state'), 'differs');
  assert.equal(await check.locator('td[data-bps]').nth(1).getAttribute('data-bps'), String(recomputedBps));
  await flagged.scrollIntoViewIfNeeded();
  await screenshot(page, 'audit-evidence-flagged');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a monitored conference nobody reported on settles overdue at 0: no evidence, which the pages say and do not flag', { timeout: 120_000 }, async () => {
  const { termsId } = await read(cfg.escrow, escrowAbi, 'agreementOf', [BigInt(monitored.id)]);
  const id = await sign(termsId);
  await waitForAgreement(id, (v) => v.chainStatus === 'active' && v.status === 'active', { what: 'active' });
  await advance(30);
  await send(accounts[1], cfg.escrow, escrowAbi, 'stop', [BigInt(id)]);
  await waitForAgreement(id, (v) => v.chainStatus === 'ended', { what: 'ended on-chain', describe: (v) => v.chainStatus });
  // No report: the service waits; once the settlement window has passed, anyone settles it: the customer
  // here, with the agreement page's button.
  await advance(Number(await read(cfg.escrow, escrowAbi, 'SETTLEMENT_WINDOW')) + 1);
  const customerPage = await openPage(browser, new URL(`/agreement/${id}`, stack.web).href, { account: accounts[1] });
  await customerPage.locator('#settle-overdue').waitFor({ timeout: 30_000 });
  assert.match(await customerPage.textContent('#settle-overdue'), /No report from the monitor in time: settle now, everything back to you/);
  await customerPage.click('#settle-overdue');
  await waitForAgreement(id, (v) => v.chainStatus === 'settled', { what: 'settled', describe: (v) => v.chainStatus });
  assert.deepEqual(customerPage.errors, []);
  await customerPage.context().close();
  const [settled] = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
  assert.equal(BigInt(settled.args.evidence), 0n);
  assert.equal(settled.args.availabilityBps, 0);
  assert.equal(settled.args.charge, 0n, 'everything back to the customer');
  await waitForAgreement(id, (v) => v.chainStatus === 'settled', { what: 'settled', describe: (v) => v.chainStatus });

  const agreement = await open(`/agreement/${id}`, '#evidence-list li[data-session="1"]');
  assert.match(await agreement.textContent('#evidence-list li[data-session="1"]'), /Conference 1: 0%, settled overdue, with no evidence/);
  assert.deepEqual(agreement.errors, []);
  await agreement.close();

  const audit = await open(`/audit#agreement-${id}`, '#audit-summary[data-agreements]');
  const row = audit.locator(`tr.agreement[data-agreement-id="${id}"]`);
  assert.equal(await row.getAttribute('data-mismatch'), null, 'the contract’s rule, not a mismatch');
  assert.equal(await row.locator('[data-evidence]').getAttribute('data-evidence'), 'overdue');
  const check = audit.locator(`tr[data-evidence-for="${id}"] table.evidence-checks tr[data-evidence-session="1"]`);
  await check.waitFor();
  assert.equal(await check.getAttribute('data-state'), 'overdue');
  assert.deepEqual(audit.errors, []);
  await audit.close();
});
