// The audit page in headless Chromium, with no wallet, against the real local stack (harness.mjs) where
// agreements of every model were signed, run and settled through the chain: the contracts are listed,
// every agreement is there and no figure differs, also for surcharged agreements at prices where rounding
// the surcharge once differs from rounding the price per unit; a service answer tampered by one wei is
// flagged on exactly that row and figure; every settlement's evidence (the commitment to the operator's
// probe records and the figure they give) recomputed from the records the service serves matches what the
// settlement emitted, and a probe record served changed after the settlement is flagged on exactly that
// row; the CSV download carries the chain's figures in base units.
//
//   node --test tests/browser/audit.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { abi, advance, api, launch, openPage, screenshot, startStack, transact, viem, waitForAgreement } from './harness.mjs';

const { createPublicClient, http } = viem;
const escrowAbi = abi.ConferenceEscrow;
const bookAbi = abi.OfferBook;

const log = (...args) => console.log(...args);
let stack;
let browser;
let chain;
let accounts;
let cfg;

const transactEscrow = (from, functionName, args, value) =>
  transact(chain, { from, to: cfg.escrow, abi: escrowAbi, functionName, args, value });

const read = (functionName, args = []) => chain.readContract({ address: cfg.escrow, abi: escrowAbi, functionName, args });

/** Waits until the service records the agreement in `chainStatus` (it follows the chain's events). */
const waitForChainStatus = (id, chainStatus) =>
  waitForAgreement(id, (view) => view.chainStatus === chainStatus && (chainStatus !== 'active' || view.status === 'active'), {
    what: chainStatus,
    describe: (view) => `${view.chainStatus}/${view.status}`,
  });

/** Offer `offerId`'s current terms version (a vote may have replaced the first). */
const termsOf = async (offerId) => (await chain.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerOf', args: [offerId] })).termsId;
const latestId = async () => Number(await read('agreementCount'));

/** Raises offer `offerId`'s first component by one base unit through a vote (both providers and the
 *  owner, dev accounts 2, 4 and 0, vote yes; the owner's yes is needed when the minimum charge's parts
 *  move), so that its price is odd. Returns the new terms id. */
async function repriceOffer(offerId) {
  const book = (functionName, args, from) => transact(chain, { from, to: cfg.book, abi: bookAbi, functionName, args });
  const offer = await chain.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerOf', args: [offerId] });
  const shares = offer.shares.map((s, i) => ({ providerId: s.providerId, component: i === 0 ? s.component + 1n : s.component }));
  await book('propose', [offerId, shares, offer.params.margin, offer.params.minimumCharge], accounts[2]);
  const proposalId = await chain.readContract({ address: cfg.book, abi: bookAbi, functionName: 'proposalCount' });
  for (const voter of [accounts[2], accounts[4], accounts[0]]) await book('vote', [proposalId, true], voter);
  await book('execute', [proposalId], accounts[0]);
  return termsOf(offerId);
}

/** The surcharged agreements at odd prices (filled by `before`). */
const surchargedIds = [];

/** One conference: the service activates it, it runs `seconds`, the customer stops, the service settles. */
async function runSession(id, seconds, settledAs) {
  await waitForChainStatus(id, 'active');
  await advance(seconds);
  await transactEscrow(accounts[1], 'stop', [BigInt(id)]);
  await waitForChainStatus(id, settledAs);
}

/** Signs offer `offerId`'s current terms (fixed or dynamic price) under the constraints and runs one
 *  conference of `seconds`. Returns the agreement's id. */
async function runSigned(offerId, seconds, regions = 0, gdpr = false) {
  const termsId = await termsOf(offerId);
  const [deposit] = await read('quote', [termsId, regions, gdpr, 0n]);
  await transactEscrow(accounts[1], 'sign', [termsId, regions, gdpr], deposit);
  const id = await latestId();
  await runSession(id, seconds, 'settled');
  return id;
}

/** Buys `count` minutes of offer 3 (time-limited), runs a session of each of `sessions` seconds, closes. */
async function runMinutes(count, sessions, regions = 0, gdpr = false) {
  const termsId = await termsOf(3);
  const [deposit] = await read('quote', [termsId, regions, gdpr, BigInt(count)]);
  await transactEscrow(accounts[1], 'buyMinutes', [termsId, regions, gdpr, count], deposit);
  const id = await latestId();
  for (const seconds of sessions) {
    await transactEscrow(accounts[1], 'start', [BigInt(id)]);
    await runSession(id, seconds, 'idle');
  }
  await transactEscrow(accounts[1], 'close', [BigInt(id)]);
  await waitForChainStatus(id, 'settled');
  return id;
}

/** Reserves a one-hour window of offer 4 (flexible period) from now, starts it and runs `seconds`. */
async function runWindow(seconds, regions = 0, gdpr = false) {
  const termsId = await termsOf(4);
  const now = Number((await chain.getBlock()).timestamp);
  const [deposit] = await read('quote', [termsId, regions, gdpr, 3600n]);
  await transactEscrow(accounts[1], 'reserve', [termsId, regions, gdpr, now, now + 3600], deposit);
  const id = await latestId();
  await transactEscrow(accounts[1], 'start', [BigInt(id)]);
  await runSession(id, seconds, 'settled');
  return id;
}

before(async () => {
  stack = await startStack();
  browser = await launch();
  cfg = stack.config;
  chain = createPublicClient({ transport: http(stack.rpc) });
  accounts = stack.accounts;

  // Dynamic price (offer 1) and fixed price (offer 2); dynamic price with GDPR and narrowed regions (the
  // surcharge); time-limited (offer 3): five minutes, sessions of 61 s and 119 s, then closed; flexible
  // period (offer 4): a one-hour window from now, run 200 s.
  await runSigned(1, 601);
  await runSigned(2, 45);
  await runSigned(1, 77, 0b001, true);
  await runMinutes(5, [61, 119]);
  await runWindow(200);
  // Odd prices with surcharges: ⌊P · u · k⌋ once, not ⌊P · k⌋ · u. Offers 1, 3 and 4 repriced by a vote.
  for (const offerId of [1, 3, 4]) await repriceOffer(offerId);
  surchargedIds.push(await runSigned(1, 77, 0b001, true), await runMinutes(7, [61, 119], 0, true), await runWindow(200, 0b001, true));
  log(`${await latestId()} agreements settled`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop?.();
});

/** The chain's own figures per agreement, straight from the events: Σ charges and the last refund. */
async function chainFigures() {
  const logs = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, fromBlock: BigInt(cfg.deployBlock) });
  const figures = new Map();
  for (const l of logs) {
    if (l.args.agreementId === undefined) continue;
    const id = Number(l.args.agreementId);
    const f = figures.get(id) ?? { charged: 0n, refund: null, deposit: null, model: null };
    if (l.eventName === 'AgreementSigned') f.deposit = l.args.deposit;
    if (l.eventName === 'AgreementSettled') {
      f.charged += l.args.charge;
      const agreement = await read('agreementOf', [BigInt(id)]);
      if (agreement.model !== 2) f.refund = l.args.refund; // TimeLimited refunds at close
    }
    if (l.eventName === 'StartCancelled' || l.eventName === 'AgreementClosed') f.refund = l.args.refund;
    figures.set(id, f);
  }
  return figures;
}

async function openAudit(setup) {
  const page = await openPage(browser, 'about:blank');
  if (setup) await setup(page);
  await page.goto(new URL('/audit', stack.web).href);
  await page.locator('#audit-summary[data-agreements]').waitFor({ timeout: 60_000 });
  return page;
}

test('with no wallet, the audit page lists the contracts and every agreement, and every figure agrees', { timeout: 120_000 }, async () => {
  const page = await openAudit();
  assert.equal(await page.evaluate(() => 'ethereum' in window), false, 'no wallet injected');
  assert.equal(await page.getAttribute('#self-check', 'data-failures'), '0', 'the formulas pass their self-check');

  // The contracts.
  for (const c of cfg.contracts) {
    const row = page.locator(`#contracts tr[data-contract="${c.name}"]`);
    assert.equal(await row.locator('[data-address]').getAttribute('data-address'), c.address);
    const text = await row.textContent();
    assert.ok(text.includes(c.compiler) && text.includes(c.evmVersion), `${c.name}: compiler and EVM version shown`);
    const verify = row.locator('.verify');
    if (c.sourceUrl) assert.equal(await verify.getAttribute('href'), c.sourceUrl);
    else if (!cfg.explorer) assert.match(await verify.textContent(), new RegExp(`^forge verify-contract ${c.address} src/${c.name}\\.sol:${c.name} `));
  }
  assert.deepEqual(cfg.contracts.map((c) => c.name).sort(), ['ConferenceEscrow', 'EscrowAnnex', 'OfferBook', 'ProviderRegistry']);

  // Every agreement, no mismatch.
  const count = await latestId();
  assert.equal(await page.getAttribute('#audit-summary', 'data-agreements'), String(count));
  assert.equal(await page.getAttribute('#audit-summary', 'data-mismatches'), '0', await page.textContent('#audit-summary'));
  assert.equal(await page.locator('tr.agreement').count(), count);
  assert.equal(await page.locator('tr.agreement[data-mismatch]').count(), 0);
  const figures = await chainFigures();
  for (const [id, f] of figures) {
    const row = page.locator(`tr.agreement[data-agreement-id="${id}"]`);
    assert.equal(await row.locator('[data-figure="charged"]').getAttribute('data-wei'), String(f.charged), `#${id} charged`);
    assert.equal(await row.locator('[data-figure="refund"]').getAttribute('data-wei'), f.refund === null ? '' : String(f.refund), `#${id} refund`);
    assert.ok(f.charged > 0n, `#${id} was charged`);
  }

  // The evidence of one agreement: its conferences on-chain and the service's probes.
  const first = [...figures.keys()][0];
  await page.locator(`button[data-toggle="${first}"]`).click();
  const evidence = page.locator(`tr[data-evidence-for="${first}"]`);
  await evidence.locator('table.settlements').waitFor();
  await evidence.locator('table.probes, p.muted').first().waitFor();
  assert.equal(await evidence.locator('table.settlements tbody tr').count(), 1);
  await screenshot(page, 'audit');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('surcharged agreements at odd prices: the surcharge applies to each whole amount, rounded once, and the page agrees', { timeout: 120_000 }, async () => {
  const page = await openAudit();
  const bps = 10_000n;
  for (const id of surchargedIds) {
    const a = await read('agreementOf', [BigInt(id)]);
    const terms = await read('termsOf', [a.termsId]);
    const k = bps + BigInt(a.surchargeBps);
    assert.equal(a.price, terms.price, `#${id}: the escrow keeps the terms' price`);
    assert.ok(a.price % 2n === 1n && a.surchargeBps > 0, `#${id}: an odd price with a surcharge`);
    const [signed] = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSigned', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
    const settled = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
    if (a.model === 2) {
      // Seven minutes: ⌊P · 7 · k⌋, which is not a multiple of the price.
      assert.equal(signed.args.deposit, (a.price * 7n * k) / bps, `#${id}: the time-limited deposit`);
      assert.notEqual(signed.args.deposit % a.price, 0n);
    } else {
      const used = BigInt(a.endedAt - a.startedAt);
      const minimum = a.model === 3 ? (terms.minimumCharge * k) / bps : 0n;
      const once = minimum + (a.price * used * k) / bps;
      assert.equal(settled[0].args.charge, once, `#${id}: ⌊P · u · k⌋, rounded once`);
      assert.notEqual(once, minimum + ((a.price * k) / bps) * used, `#${id}: rounding the price per unit first would differ`);
    }
    const row = page.locator(`tr.agreement[data-agreement-id="${id}"]`);
    assert.equal(await row.getAttribute('data-mismatch'), null, `#${id}: no figure differs`);
    const charged = settled.reduce((sum, l) => sum + l.args.charge, 0n);
    assert.equal(await row.locator('[data-figure="charged"]').getAttribute('data-wei'), String(charged), `#${id}: charged, recomputed`);
    await page.locator(`button[data-toggle="${id}"]`).click();
    assert.equal(await page.locator(`tr[data-evidence-for="${id}"] [data-surcharge-bps]`).getAttribute('data-surcharge-bps'), String(a.surchargeBps));
  }
  assert.equal(await page.getAttribute('#audit-summary', 'data-mismatches'), '0', await page.textContent('#audit-summary'));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a figure the service misreports by one wei is flagged on exactly that row', { timeout: 120_000 }, async () => {
  const target = 2;
  let tampered = null;
  const page = await openAudit((p) => p.route('**/api/agreements*', async (route) => {
    const response = await route.fetch();
    const list = await response.json();
    const entry = list.find((a) => a.id === target);
    entry.charged = String(BigInt(entry.charged) + 1n);
    tampered = entry.charged;
    await route.fulfill({ response, json: list });
  }));
  assert.ok(tampered, 'the list was tampered');
  assert.equal(await page.getAttribute('#audit-summary', 'data-mismatches'), '1');
  assert.equal(await page.getAttribute('#audit-summary', 'data-flagged'), '1');
  const flagged = page.locator('tr.agreement[data-mismatch]');
  assert.equal(await flagged.count(), 1);
  assert.equal(await flagged.getAttribute('data-agreement-id'), String(target));
  assert.equal(await flagged.getAttribute('data-mismatch'), 'charged');
  assert.match(await flagged.locator('td.check').textContent(), /charged differs/);
  assert.equal(await page.locator('tr.mismatch-detail').count(), 1);
  const warning = page.locator(`tr.mismatch-detail[data-mismatch-for="${target}"] li[data-figure="charged"][data-source="service"]`);
  assert.equal(await page.locator('tr.mismatch-detail li').count(), 1, 'one figure flagged');
  const text = await warning.textContent();
  const expected = String(BigInt(tampered) - 1n);
  assert.ok(text.includes(`shows ${tampered}`) && text.includes(`expected ${expected}`), text);
  await flagged.scrollIntoViewIfNeeded();
  await screenshot(page, 'audit-flagged');
  assert.deepEqual(page.errors, []);
  await page.close();
});

/** Every AgreementSettled event: one per settled conference (or window passed without one). */
const settlements = () => chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', fromBlock: BigInt(cfg.deployBlock) });

test('every settlement’s evidence, recomputed from the probe records the service serves, matches what it emitted', { timeout: 120_000 }, async () => {
  const page = await openAudit();
  assert.equal(await page.getAttribute('#self-check', 'data-failures'), '0', await page.textContent('#self-check'));
  const events = await settlements();
  assert.ok(events.length > 0);
  assert.ok(events.every((e) => /^0x[0-9a-f]{64}$/.test(e.args.evidence) && BigInt(e.args.evidence) !== 0n), 'every settlement committed to its records');
  assert.equal(await page.getAttribute('#audit-summary', 'data-evidence-checked'), String(events.length));
  assert.equal(await page.getAttribute('#audit-summary', 'data-evidence-matches'), String(events.length), await page.textContent('#audit-summary'));
  assert.match(await page.textContent('#audit-summary'), new RegExp(`the evidence of ${events.length} settled conferences matches`));
  for (const id of new Set(events.map((e) => Number(e.args.agreementId)))) {
    assert.equal(await page.locator(`tr.agreement[data-agreement-id="${id}"] [data-evidence]`).getAttribute('data-evidence'), 'matches', `#${id}`);
  }
  // A time-limited agreement's two conferences, each checked against its own settlement, by the operator's probes.
  const minutes = Number(events.find((e, i) => events.findIndex((f) => f.args.agreementId === e.args.agreementId) !== i).args.agreementId);
  await page.locator(`button[data-toggle="${minutes}"]`).click();
  const checks = page.locator(`tr[data-evidence-for="${minutes}"] table.evidence-checks tbody tr`);
  await checks.first().waitFor();
  assert.equal(await checks.count(), 2);
  const own = events.filter((e) => Number(e.args.agreementId) === minutes);
  for (let i = 0; i < 2; i++) {
    const row = checks.nth(i);
    assert.equal(await row.getAttribute('data-state'), 'matches');
    assert.match(await row.textContent(), /the operator/);
    assert.equal(await row.locator('td[data-evidence]').first().getAttribute('data-evidence'), own[i].args.evidence);
    assert.equal(await row.locator('td[data-bps]').first().getAttribute('data-bps'), String(own[i].args.availabilityBps));
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a probe record the service serves changed after the settlement is flagged on exactly that row', { timeout: 120_000 }, async () => {
  // The first agreement whose settled conference has a successful probe inside its measured period.
  let target = null;
  for (let id = 1; id <= (await latestId()) && !target; id++) {
    const view = await api(`/api/agreements/${id}/probes`);
    const session = view.sessions.find((s) => s.settledEvidence && s.measurement?.records.some((r) => r.ok));
    if (session) target = { id, evidence: session.settledEvidence, atMs: session.measurement.records.find((r) => r.ok).atMs };
  }
  assert.ok(target, 'a settled conference with a successful probe in its period');
  const page = await openAudit((p) => p.route(`**/api/agreements/${target.id}/probes`, async (route) => {
    const response = await route.fetch();
    const view = await response.json();
    for (const s of view.sessions) {
      for (const record of [...s.probes, ...(s.measurement?.records ?? [])]) if (record.atMs === target.atMs) record.ok = false;
    }
    await route.fulfill({ response, json: view });
  }));
  assert.equal(await page.getAttribute('#audit-summary', 'data-flagged'), '1', await page.textContent('#audit-summary'));
  const flagged = page.locator('tr.agreement[data-mismatch]');
  assert.equal(await flagged.getAttribute('data-agreement-id'), String(target.id));
  assert.ok((await flagged.getAttribute('data-mismatch')).split(' ').includes('evidence'));
  assert.match(await flagged.locator('td.check').textContent(), /evidence/);
  assert.equal(await flagged.locator('[data-evidence]').getAttribute('data-evidence'), 'differs');
  const items = page.locator(`tr.mismatch-detail[data-mismatch-for="${target.id}"] li`);
  assert.equal(await page.locator('tr.mismatch-detail li[data-source="records"]').count(), await items.count(), 'only the records differ');
  const text = await items.filter({ has: page.locator('xpath=self::li[@data-figure="evidence"]') }).textContent();
  assert.ok(text.includes(`the settlement committed to ${target.evidence}`), text);
  // Every other settled agreement still matches.
  const others = page.locator(`tr.agreement:not([data-agreement-id="${target.id}"]) [data-evidence]`);
  for (const state of await others.evaluateAll((cells) => cells.map((c) => c.dataset.evidence))) assert.equal(state, 'matches');
  await flagged.scrollIntoViewIfNeeded();
  await screenshot(page, 'audit-probe-altered');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the CSV download carries every agreement with the chain’s figures in base units', { timeout: 120_000 }, async () => {
  const page = await openAudit();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  assert.equal(download.suggestedFilename(), 'agreements.csv');
  const text = readFileSync(await download.path(), 'utf8');
  const [header, ...lines] = text.trim().split('\r\n');
  const columns = header.split(',');
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [columns[i], v])));
  const figures = await chainFigures();
  assert.equal(rows.length, figures.size);
  for (const row of rows) {
    const f = figures.get(Number(row.agreementId));
    assert.ok(f, `agreement ${row.agreementId} is on chain`);
    assert.equal(row.chargedOnChain, String(f.charged));
    assert.equal(row.chargedRecomputed, String(f.charged));
    assert.equal(row.chargedService, String(f.charged));
    assert.equal(row.refundOnChain, String(f.refund ?? ''));
    assert.equal(row.refundRecomputed, String(f.refund ?? ''));
    assert.equal(row.deposit, String(f.deposit));
    assert.equal(row.mismatches, '');
  }
  log(`CSV: ${rows.length} agreements, every amount as the chain's events give it`);
  await page.close();
});
