// The provider page in headless Chromium against the real local stack (harness.mjs): the division of
// income (the page's split of a settled charge equals the contract's, and withdrawing pays exactly
// `earningsOf` to the payout address), the consensus decision (propose, both providers vote yes,
// execute: the new terms version is open on-chain with the proposed figures), registering, and a
// provider that left (no vote offered, its payout still movable; the owner's ballot named as such).
//
//   node --test tests/browser/provider.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { abi, advance, launch, openPage, screenshot, startStack, transact, viem, waitForAgreement } from './harness.mjs';

const { createPublicClient, http } = viem;
const escrowAbi = abi.ConferenceEscrow;
const bookAbi = abi.OfferBook;
const registryAbi = abi.ProviderRegistry;

const log = (...args) => console.log(...args);
let stack;
let browser;
let chain; // a viem public client on the stack's anvil
let accounts; // anvil's dev accounts
let cfg; // GET /api/config

// ---------------------------------------------------------------------------------------------
// The chain, driven as a customer would (anvil's dev accounts are unlocked).
// ---------------------------------------------------------------------------------------------

const read = (address, abi, functionName, args = []) => chain.readContract({ address, abi, functionName, args });

const waitForStatus = (id, status) => waitForAgreement(id, (view) => view.status === status, { what: status });

/** The customer signs offer `offerId`'s current terms (fixed or dynamic price), the service runs it
 *  for `seconds`, the customer stops, the service settles. Returns the agreement id. */
async function runAgreement(offerId, seconds) {
  const { termsId } = await read(cfg.book, bookAbi, 'offerOf', [offerId]);
  const [deposit] = await read(cfg.escrow, escrowAbi, 'quote', [termsId, 0, false, 0n]);
  const receipt = await transact(chain, { from: accounts[1], to: cfg.escrow, abi: escrowAbi, functionName: 'sign', args: [termsId, 0, false], value: deposit });
  const id = Number(await read(cfg.escrow, escrowAbi, 'agreementCount'));
  log(`agreement ${id} signed on terms ${termsId} (block ${receipt.blockNumber})`);
  await waitForStatus(id, 'active');
  await advance(seconds);
  await transact(chain, { from: accounts[1], to: cfg.escrow, abi: escrowAbi, functionName: 'stop', args: [BigInt(id)] });
  await waitForStatus(id, 'settled');
  return id;
}

/** What the contract credited provider `providerId` for agreement `id`: ⌊charge · c / P⌋ of its terms. */
async function expectedPart(id, providerId) {
  const agreement = await read(cfg.escrow, escrowAbi, 'agreementOf', [BigInt(id)]);
  const terms = await read(cfg.escrow, escrowAbi, 'termsOf', [agreement.termsId]);
  const logs = await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
  const share = terms.shares.find((s) => s.providerId === providerId);
  // Each settlement is split on its own (a time-limited agreement has one per conference).
  const charge = logs.reduce((sum, l) => sum + l.args.charge, 0n);
  const part = logs.reduce((sum, l) => sum + (l.args.charge * share.component) / terms.price, 0n);
  return { offerId: terms.offerId, charge, part, terms };
}

/** Opens /provider as `account`, connects, and waits until the page has read everything. */
async function providerPage(account) {
  const page = await openPage(browser, new URL('/provider', stack.web).href, { account });
  await page.locator('#provider-connect').click();
  await waitForReady(page);
  return page;
}

/** Waits for the page to finish a (re)draw after `since`, failing early with the page's error sentence. */
async function waitForReady(page, since = 0, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const { ready, error, registerForm } = await page.evaluate(() => ({
      ready: Number(document.querySelector('#main')?.dataset.ready ?? 0),
      error: document.querySelector('#error')?.hidden ? '' : (document.querySelector('#error')?.textContent ?? '').trim(),
      registerForm: !!document.querySelector('#register-form'),
    }));
    if (error) throw new Error(`the provider page shows an error: ${error}`);
    if (ready > since || (since === 0 && registerForm)) return ready;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the provider page did not finish reading the chain');
}

/** Clicks `selector` and waits for the redraw that follows the transaction. */
async function clickAndWait(page, selector) {
  const since = Number((await page.evaluate(() => document.querySelector('#main')?.dataset.ready)) ?? 0);
  await page.locator(selector).click();
  return waitForReady(page, since);
}

before(async () => {
  stack = await startStack();
  browser = await launch();
  cfg = stack.config;
  chain = createPublicClient({ transport: http(stack.rpc) });
  accounts = stack.accounts;
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop?.();
});

test('income is split as the contract splits it, per offer and per agreement, and withdrawn to the wei', { timeout: 400_000 }, async () => {
  const infra = Number(await read(cfg.registry, registryAbi, 'idOf', [accounts[2]]));
  const software = Number(await read(cfg.registry, registryAbi, 'idOf', [accounts[4]]));
  assert.ok(infra > 0 && software > 0, 'the dev stack registers dev accounts 2 and 4 as providers');

  // Two settled agreements on offer 1 (dynamic price, odd seconds for rounding) and one on offer 2 (fixed).
  await runAgreement(1, 601);
  await runAgreement(1, 333);
  await runAgreement(2, 60);
  // Every agreement on the chain counts (a stack may hold earlier ones).
  const count = Number(await read(cfg.escrow, escrowAbi, 'agreementCount'));
  const ids = Array.from({ length: count }, (_, i) => i + 1);

  for (const [account, providerId, payoutIndex] of [[accounts[2], infra, 3], [accounts[4], software, 5]]) {
    const page = await providerPage(account);
    assert.equal(await page.textContent('#provider-id'), String(providerId));
    assert.equal((await page.textContent('#provider-payout')).toLowerCase(), accounts[payoutIndex].toLowerCase());

    // Per agreement: the page's part is the contract's ⌊charge · c / P⌋.
    const perOffer = new Map();
    let total = 0n;
    for (const id of ids) {
      const { offerId, charge, part, terms } = await expectedPart(id, providerId);
      if (charge === 0n) continue;
      const row = page.locator(`tr[data-income-agreement="${id}"]`);
      assert.equal(await row.getAttribute('data-charge'), String(charge), `agreement ${id}: the charge`);
      assert.equal(await row.getAttribute('data-wei'), String(part), `agreement ${id}: provider ${providerId}'s part`);
      perOffer.set(offerId, (perOffer.get(offerId) ?? 0n) + part);
      if (terms.tokenId === 0) total += part;
      log(`provider ${providerId}: agreement ${id} charged ${charge}, part ${part}`);
    }
    for (const [offerId, amount] of perOffer) {
      assert.equal(await page.getAttribute(`tr[data-income-offer="${offerId}"]`, 'data-wei'), String(amount), `offer ${offerId}: the sum of the parts`);
    }

    // The escrow holds exactly that, less earlier withdrawals; withdrawing pays it to the payout.
    const earnings = await read(cfg.escrow, escrowAbi, 'earningsOf', [providerId, 0]);
    const withdrawn = (await chain.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'EarningsWithdrawn', args: { providerId, tokenId: 0 }, fromBlock: BigInt(cfg.deployBlock) }))
      .reduce((sum, l) => sum + l.args.amount, 0n);
    assert.equal(earnings, total - withdrawn, 'earningsOf is the sum of the parts the page computed, less what was withdrawn');
    const row = page.locator('tr[data-earnings-token="0"]');
    assert.equal(await row.getAttribute('data-wei'), String(earnings));
    assert.equal(await row.locator('[data-agrees]').getAttribute('data-agrees'), 'true');
    if (providerId === infra) await screenshot(page, 'provider-income');
    const before = await chain.getBalance({ address: accounts[payoutIndex] });
    await clickAndWait(page, 'button[data-withdraw="0"]');
    const afterBalance = await chain.getBalance({ address: accounts[payoutIndex] });
    assert.equal(afterBalance - before, earnings, 'the payout address received exactly earningsOf');
    assert.equal(await read(cfg.escrow, escrowAbi, 'earningsOf', [providerId, 0]), 0n);
    assert.equal(await page.getAttribute('tr[data-earnings-token="0"]', 'data-wei'), '0');
    assert.equal(await page.getAttribute('tr[data-earnings-token="0"]', 'data-withdrawn'), String(withdrawn + earnings));
    assert.deepEqual(page.errors, []);
    log(`provider ${providerId} withdrew ${earnings} wei to ${accounts[payoutIndex]}`);
    await page.close();
  }
});

test('the providers propose new terms, both vote yes in the page, the owner consents to the new margin, and the executed version is open on-chain', { timeout: 300_000 }, async () => {
  const infra = Number(await read(cfg.registry, registryAbi, 'idOf', [accounts[2]]));
  const software = Number(await read(cfg.registry, registryAbi, 'idOf', [accounts[4]]));
  const offerBefore = await read(cfg.book, bookAbi, 'offerOf', [1]);
  const oldTermsId = offerBefore.termsId;
  const old = await read(cfg.escrow, escrowAbi, 'termsOf', [oldTermsId]);
  const proposed = new Map([[infra, 700_000_000_000n], [software, 250_000_000_000n]]);
  const margin = 50_000_000_001n;

  // Provider A proposes on offer 1.
  const a = await providerPage(accounts[2]);
  await a.selectOption('#propose-offer', '1');
  for (const [providerId, component] of proposed) await a.fill(`#propose-form input[data-share-provider="${providerId}"]`, String(component));
  await a.fill('#propose-margin', String(margin));
  await a.fill('#propose-minimum', '0');
  await clickAndWait(a, '#propose-submit');
  const proposalId = Number(await read(cfg.book, bookAbi, 'proposalCount'));
  const row = (page) => page.locator(`tr[data-proposal-id="${proposalId}"]`);
  assert.equal(await row(a).getAttribute('data-status'), 'open');
  assert.equal(await row(a).locator(`[data-share-provider="${infra}"]`).getAttribute('data-component'), String(proposed.get(infra)));
  assert.equal(await row(a).locator('[data-margin]').getAttribute('data-margin'), String(margin));

  // A votes yes: one of two is not a majority yet.
  await clickAndWait(a, `button[data-vote-yes="${proposalId}"]`);
  assert.equal(await row(a).getAttribute('data-yes'), '1');
  assert.equal(await row(a).getAttribute('data-status'), 'open');
  assert.equal(await a.locator(`button[data-vote-yes="${proposalId}"]`).count(), 0, 'no second vote offered');
  assert.equal(await read(cfg.book, bookAbi, 'hasPassed', [BigInt(proposalId)]), false);

  // B votes yes in its page (its component is lowered: its yes is its consent): a quorum, but the margin
  // changes, so the offer's owner must agree too; the page says so.
  let b = await providerPage(accounts[4]);
  await clickAndWait(b, `button[data-vote-yes="${proposalId}"]`);
  assert.equal(await row(b).getAttribute('data-yes'), '2');
  assert.equal(await row(b).getAttribute('data-status'), 'open');
  assert.equal(await row(b).locator('[data-consent-missing]').getAttribute('data-consent-missing'), '0', 'the owner’s yes is missing');
  assert.equal(await read(cfg.book, bookAbi, 'hasPassed', [BigInt(proposalId)]), false);

  // The owner (dev account 0) votes yes: passed; B executes.
  await transact(chain, { from: accounts[0], to: cfg.book, abi: bookAbi, functionName: 'vote', args: [BigInt(proposalId), true] });
  await b.close();
  b = await providerPage(accounts[4]);
  assert.equal(await row(b).getAttribute('data-status'), 'passed');
  assert.match(await row(b).locator('[data-ballots]').textContent(), /the owner: yes/);
  assert.equal(await row(b).locator('[data-consent-missing]').count(), 0);
  assert.equal(await read(cfg.book, bookAbi, 'hasPassed', [BigInt(proposalId)]), true);
  await screenshot(b, 'provider-proposals');
  await clickAndWait(b, `button[data-execute="${proposalId}"]`);
  assert.equal(await row(b).getAttribute('data-status'), 'executed');

  // On-chain: a new terms version, open, with the proposed shares and margin; the old one closed.
  const offerAfter = await read(cfg.book, bookAbi, 'offerOf', [1]);
  assert.notEqual(offerAfter.termsId, oldTermsId);
  const terms = await read(cfg.escrow, escrowAbi, 'termsOf', [offerAfter.termsId]);
  assert.equal(terms.open, true);
  assert.equal(terms.offerId, 1);
  assert.equal(terms.margin, margin);
  assert.deepEqual(terms.shares.map((s) => [s.providerId, s.component]), [...proposed]);
  assert.equal(terms.price, [...proposed.values()].reduce((x, y) => x + y, margin));
  assert.equal(terms.model, old.model);
  assert.equal((await read(cfg.escrow, escrowAbi, 'termsOf', [oldTermsId])).open, false);
  assert.match(await row(b).locator('.proposal-status').textContent(), new RegExp(`terms ${offerAfter.termsId}`));
  assert.deepEqual([...a.errors, ...b.errors], []);
  log(`proposal ${proposalId} executed: offer 1 now on terms ${offerAfter.termsId}, price ${terms.price}`);
  await a.close();
  await b.close();
});

test('a new account registers as a provider through the page', { timeout: 120_000 }, async () => {
  const newcomer = accounts[6];
  const payout = accounts[7];
  assert.equal(Number(await read(cfg.registry, registryAbi, 'idOf', [newcomer])), 0);
  const page = await providerPage(newcomer);
  await page.locator('#register-form').waitFor();
  await page.selectOption('#role', '2'); // Monitoring
  await page.fill('#payout', payout);
  await page.check('#register-form input[name="region"][value="0"]');
  await page.check('#register-form input[name="region"][value="2"]');
  await page.check('#gdpr');
  await page.locator('#register').click();
  await waitForReady(page, 1);
  const id = Number(await read(cfg.registry, registryAbi, 'idOf', [newcomer]));
  assert.ok(id > 0, 'registered');
  const provider = await read(cfg.registry, registryAbi, 'providerOf', [id]);
  assert.equal(provider.role, 2);
  assert.equal(provider.payout.toLowerCase(), payout.toLowerCase());
  assert.equal(provider.regions, 0b101);
  assert.equal(provider.gdpr, true);
  assert.equal(provider.active, true);
  assert.equal(await page.textContent('#provider-id'), String(id));
  assert.equal(await page.getAttribute('#provider-regions', 'data-mask'), '5');
  assert.deepEqual(page.errors, []);
  await screenshot(page, 'provider-registered');
  log(`dev account 6 registered as provider ${id}, paid at ${payout}`);
});

test('a provider that left is offered no vote and still moves its payout; the owner’s ballot is shown as the owner’s', { timeout: 180_000 }, async () => {
  const newcomer = accounts[6]; // registered by the test above
  const id = Number(await read(cfg.registry, registryAbi, 'idOf', [newcomer]));
  assert.ok(id > 0, 'the newcomer is registered');

  // Provider A proposes to add the newcomer to offer 2; the offer's owner (dev account 0) votes yes.
  const offer = await read(cfg.book, bookAbi, 'offerOf', [2]);
  const shares = [...offer.shares.map((s) => ({ providerId: s.providerId, component: s.component })), { providerId: id, component: 100_000_000_000_000n }];
  await transact(chain, { from: accounts[2], to: cfg.book, abi: bookAbi, functionName: 'propose', args: [2, shares, offer.params.margin, 0n] });
  const proposalId = Number(await read(cfg.book, bookAbi, 'proposalCount'));
  await transact(chain, { from: accounts[0], to: cfg.book, abi: bookAbi, functionName: 'vote', args: [BigInt(proposalId), true] });
  const proposal = await read(cfg.book, bookAbi, 'proposalOf', [BigInt(proposalId)]);
  assert.equal(proposal.electorate, offer.shares.length, 'the electorate: the offer’s providers registered when it was made');
  assert.equal(proposal.yesVotes, 0, 'the owner’s yes does not count toward the quorum');

  // While registered, the newcomer may vote on the proposal that adds it, and sees the owner's ballot.
  let page = await providerPage(newcomer);
  let row = page.locator(`tr[data-proposal-id="${proposalId}"]`);
  assert.equal(await row.getAttribute('data-electorate'), String(offer.shares.length));
  assert.match(await row.textContent(), new RegExp(`0 of ${offer.shares.length} yes`));
  assert.match(await row.locator('[data-ballots]').textContent(), /the owner: yes/);
  assert.equal(await row.locator(`button[data-vote-yes="${proposalId}"]`).count(), 1, 'a provider the proposal adds may vote');
  assert.equal(await row.locator('[data-consent-missing]').getAttribute('data-consent-missing'), String(id), 'its consent to join is missing');
  assert.equal(await page.getAttribute('#update-form', 'data-payout-only'), 'false');
  await page.close();

  // It leaves the registry: no vote, no proposal form, but its payout address can still be moved.
  await transact(chain, { from: newcomer, to: cfg.registry, abi: registryAbi, functionName: 'deregister', args: [] });
  page = await providerPage(newcomer);
  row = page.locator(`tr[data-proposal-id="${proposalId}"]`);
  assert.equal(await page.getAttribute('#provider-status', 'data-active'), 'false');
  assert.equal(await row.locator('button[data-vote-yes], button[data-vote-no]').count(), 0, 'no vote offered to a provider that left');
  assert.equal(await page.locator('#propose-form').count(), 0, 'no proposal form');
  assert.equal(await page.getAttribute('#update-form', 'data-payout-only'), 'true');
  assert.equal(await page.locator('#update-form input[type="checkbox"]').count(), 0, 'payout only: no regions or GDPR');
  const before = await read(cfg.registry, registryAbi, 'providerOf', [id]);
  const newPayout = accounts[8];
  await page.fill('#update-payout', newPayout);
  await clickAndWait(page, '#update');
  const after = await read(cfg.registry, registryAbi, 'providerOf', [id]);
  assert.equal(after.payout.toLowerCase(), newPayout.toLowerCase(), 'the payout moved');
  assert.equal(after.active, false, 'still left');
  assert.equal(after.regions, before.regions, 'its regions unchanged');
  assert.equal(after.gdpr, before.gdpr);
  assert.equal((await page.textContent('#provider-payout')).toLowerCase(), newPayout.toLowerCase());
  assert.deepEqual(page.errors, []);
  await screenshot(page, 'provider-left');
  log(`provider ${id} left and moved its payout to ${newPayout}`);
  await page.close();
});
