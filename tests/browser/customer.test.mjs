// The customer's and the participants' pages in headless Chromium against the real local stack
// (harness.mjs): a click-through per pricing model with the money checked to the wei on-chain
// afterwards, the stablecoin with its approval, constraints with their surcharge, a rejected signature,
// a wrong network, and participants registered (the conference on the SFU, and the refusal of an
// unregistered address, are room.test.mjs's). One stack for the whole file; screenshots of each main screen in target/browser-artifacts/.
//
//   node --test tests/browser/customer.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { abi, advance, api, launch, openPage, rpc, screenshot, startStack, viem, waitForProbes } from './harness.mjs';

const { createPublicClient, http } = viem;
const escrowAbi = abi.ConferenceEscrow;
const erc20Abi = [
  { type: 'function', name: 'balanceOf', stateMutability: 'view', inputs: [{ name: 'a', type: 'address' }], outputs: [{ type: 'uint256' }] },
];

const STATUS_TIMEOUT_MS = 90_000;
const log = (...args) => console.log(...args);

let stack;
let browser;
let chain; // a viem public client on the stack's anvil
let customer;

before(async () => {
  stack = await startStack();
  log(`stack ready: ${stack.web} (rpc ${stack.rpc})`);
  browser = await launch();
  chain = createPublicClient({ transport: http(stack.rpc), cacheTime: 0 });
  customer = stack.customer;
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

const read = (functionName, args) => chain.readContract({ address: stack.escrow, abi: escrowAbi, functionName, args });

/** The escrow's events about agreement `id`, decoded. */
async function eventsOf(id, eventName) {
  return chain.getContractEvents({ address: stack.escrow, abi: escrowAbi, eventName, args: { agreementId: BigInt(id) }, fromBlock: BigInt(stack.config.deployBlock) });
}

/** What `from` paid in gas for its transactions mined after block `since`. */
async function gasSpentSince(from, since) {
  const head = await chain.getBlockNumber();
  let spent = 0n;
  for (let n = since + 1n; n <= head; n++) {
    const block = await chain.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== from.toLowerCase()) continue;
      const receipt = await chain.getTransactionReceipt({ hash: tx.hash });
      spent += receipt.gasUsed * receipt.effectiveGasPrice;
    }
  }
  return spent;
}

/** Waits until the agreement page's `#status` says `status`, failing at once on the page's error sentence. */
async function waitStatus(page, status, timeout = STATUS_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    const { current, error } = await page.evaluate(() => ({
      current: document.querySelector('#status')?.dataset.status ?? '',
      error: document.querySelector('#error:not([hidden])')?.textContent?.trim() ?? '',
    }));
    if (error) throw new Error(`the page shows an error while waiting for "${status}": ${error}`);
    if (current !== last) {
      log(`  status: ${current || '(none yet)'}`);
      last = current;
    }
    if (current === status) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the status did not reach "${status}" within ${timeout / 1000} s (last: "${last}")`);
}

/** The page's error sentence, or ''. */
const errorText = async (page) => (await page.locator('#error').isVisible()) ? (await page.textContent('#error')).trim() : '';

/** Opens the offers as the customer, connects, chooses terms `termsId` and waits for the quote with its
 *  gas estimate (which needs the wallet). `fill` sets the form. Returns the page and the quote's figures. */
async function chooseOffer(termsId, { page, fill } = {}) {
  page ??= await openPage(browser, stack.web, { account: customer });
  await page.locator(`[data-testid="choose-${termsId}"]`).waitFor();
  if (!(await page.locator('#account').count())) {
    await page.click('#connect');
    await page.locator('#account').waitFor();
  }
  await page.click(`[data-testid="choose-${termsId}"]`);
  await page.locator('#quote-deposit').waitFor();
  if (fill) {
    await fill(page);
    await page.waitForTimeout(400); // the quote is read again 150 ms after the last change
  }
  await page.locator('#quote-gas, [data-testid="quote-error"]').first().waitFor();
  const deposit = BigInt(await page.getAttribute('#quote-deposit', 'data-units'));
  const price = BigInt(await page.getAttribute('#quote-price', 'data-units'));
  return { page, deposit, price };
}

/** Presses "Pay" and waits for the agreement's page; returns its id. */
async function pay(page) {
  await page.locator('#pay:not([disabled])').waitFor();
  await page.click('#pay');
  await page.waitForURL(/\/agreement\/\d+$/, { timeout: 30_000 });
  return Number(new URL(page.url()).pathname.split('/').pop());
}

/** The settlement's figures as the page shows them. */
async function shown(page) {
  return {
    charge: BigInt(await page.getAttribute('#charge', 'data-wei')),
    refund: BigInt(await page.getAttribute('#refund', 'data-wei')),
    checked: await page.getAttribute('#charge-check', 'data-ok'),
  };
}

// ---------------------------------------------------------------------------------------------
// The pricing models.
// ---------------------------------------------------------------------------------------------

test('dynamic price: pay, follow to active with the join link, stop, settled to the wei', { timeout: 240_000 }, async () => {
  const { page, deposit, price } = await chooseOffer(1);
  await screenshot(page, 'quote');
  const terms = (await api('/api/offers')).find((t) => t.id === 1);
  assert.equal(price, BigInt(terms.price));
  assert.equal(deposit, BigInt(terms.deposit), 'the quote locks price × the longest duration');
  assert.equal(await page.getAttribute('#quote-refundable', 'data-units'), deposit.toString());
  assert.ok(BigInt(await page.getAttribute('#quote-gas', 'data-wei')) > 0n, 'a gas estimate in ETH');

  const before = await chain.getBalance({ address: customer });
  const since = await chain.getBlockNumber();
  const pressed = Date.now();
  const id = await pay(page);
  await page.locator('#steps li[aria-current="step"]').waitFor();
  await screenshot(page, 'agreement-progress');
  await page.locator('#join-link').waitFor({ timeout: STATUS_TIMEOUT_MS });
  const payToJoinMs = Date.now() - pressed;
  log(`pay → join URL shown: ${payToJoinMs} ms`);
  await waitStatus(page, 'active');
  assert.equal(await page.getAttribute('#join-link', 'href'), new URL(`/join/${id}`, stack.web).href);
  assert.equal(await page.getAttribute('#steps li[aria-current="step"]', 'data-step'), 'active');
  await screenshot(page, 'agreement-active');

  await advance(600);
  await page.click('#stop');
  await waitStatus(page, 'settled');
  await page.locator('#charge-check').waitFor();
  await screenshot(page, 'settlement');

  const a = await read('agreementOf', [BigInt(id)]);
  const used = BigInt(a.endedAt - a.startedAt);
  assert.ok(used >= 600n, `used ${used} s`);
  const [settled] = await eventsOf(id, 'AgreementSettled');
  const charge = price * used;
  assert.equal(settled.args.charge, charge, 'charge = price × seconds used');
  assert.equal(settled.args.refund, deposit - charge, 'refund = deposit − price × seconds used');
  assert.equal(settled.args.refundDeferred, false);
  const figures = await shown(page);
  assert.deepEqual(figures, { charge, refund: deposit - charge, checked: 'true' });
  const gas = await gasSpentSince(customer, since);
  const after = await chain.getBalance({ address: customer });
  assert.equal(before - after, deposit - (deposit - charge) + gas, 'the customer paid the charge and the gas, nothing else');
  assert.equal(await errorText(page), '');
  assert.deepEqual(page.errors, []);
  log(`dynamic: ${used} s, charge ${charge}, refund ${deposit - charge}, gas ${gas}`);
  await page.context().close();
});

test('fixed price: pay, active, a gasless signed stop, the price charged', { timeout: 240_000 }, async () => {
  const { page, deposit, price } = await chooseOffer(2);
  assert.equal(deposit, price, 'a fixed price locks the price');
  const before = await chain.getBalance({ address: customer });
  const since = await chain.getBlockNumber();
  const id = await pay(page);
  await waitStatus(page, 'active');
  await advance(300);
  const nonce = await chain.getTransactionCount({ address: customer });
  await page.click('#stop-signed');
  await waitStatus(page, 'settled');
  assert.equal(await chain.getTransactionCount({ address: customer }), nonce, 'no transaction to stop');
  const [settled] = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.args.charge, price);
  assert.equal(settled.args.refund, 0n);
  await page.locator('#charge-check').waitFor();
  assert.deepEqual(await shown(page), { charge: price, refund: 0n, checked: 'true' });
  const gas = await gasSpentSince(customer, since);
  assert.equal(before - (await chain.getBalance({ address: customer })), price + gas);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('minutes: buy ten, start a session, stop, close the account for the unused minutes', { timeout: 240_000 }, async () => {
  const { page, deposit, price } = await chooseOffer(3, { fill: (p) => p.fill('#minutes', '10') });
  assert.equal(deposit, price * 10n);
  const before = await chain.getBalance({ address: customer });
  const since = await chain.getBlockNumber();
  const id = await pay(page);
  await waitStatus(page, 'idle');
  await page.locator('#minutes-left[data-seconds="600"]').waitFor();
  await page.click('#start');
  await waitStatus(page, 'active');
  await advance(125);
  await page.click('#stop');
  await page.locator('#settlement:not([hidden]) #charge-check').waitFor({ timeout: STATUS_TIMEOUT_MS });
  await waitStatus(page, 'idle');
  const a = await read('agreementOf', [BigInt(id)]);
  const [session] = await eventsOf(id, 'AgreementSettled');
  const used = BigInt(a.endedAt - a.startedAt);
  const charge = (price * used) / 60n;
  assert.equal(session.args.charge, charge, 'a session costs ⌊price per minute × seconds ÷ 60⌋');
  assert.equal(await page.getAttribute('#charge-check', 'data-ok'), 'true');
  await page.locator(`#minutes-left[data-seconds="${600n - used}"]`).waitFor();
  await page.click('#close');
  await waitStatus(page, 'settled');
  const [closed] = await eventsOf(id, 'AgreementClosed');
  assert.equal(closed.args.refund, deposit - charge, 'closing returns the unused minutes');
  await page.locator(`#refund[data-wei="${deposit - charge}"]`).waitFor();
  const gas = await gasSpentSince(customer, since);
  assert.equal(before - (await chain.getBalance({ address: customer })), charge + gas);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('flexible window: reserve, start inside it, stop; the minimum stays charged', { timeout: 240_000 }, async () => {
  const { page, deposit, price } = await chooseOffer(4);
  const minimum = BigInt(await page.getAttribute('#quote-minimum', 'data-units'));
  assert.equal(await page.getAttribute('#quote-refundable', 'data-units'), (deposit - minimum).toString());
  const before = await chain.getBalance({ address: customer });
  const since = await chain.getBlockNumber();
  const id = await pay(page);
  await waitStatus(page, 'idle');
  await page.locator('#start:not([disabled])').waitFor();
  await page.click('#start');
  await waitStatus(page, 'active');
  await advance(90);
  await page.click('#stop');
  await waitStatus(page, 'settled');
  const a = await read('agreementOf', [BigInt(id)]);
  const used = BigInt(a.endedAt - a.startedAt);
  const charge = minimum + price * used;
  const [settled] = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.args.charge, charge, 'minimum + price × seconds used');
  assert.equal(settled.args.refund, deposit - charge);
  await page.locator('#charge-check').waitFor();
  assert.deepEqual(await shown(page), { charge, refund: deposit - charge, checked: 'true' });
  const gas = await gasSpentSince(customer, since);
  assert.equal(before - (await chain.getBalance({ address: customer })), charge + gas);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('constraints: GDPR and one region cost the surcharges, and the conference runs in that region', { timeout: 240_000 }, async () => {
  const terms = (await api('/api/offers')).find((t) => t.id === 1);
  const { page, deposit, price } = await chooseOffer(1, {
    fill: async (p) => {
      await p.check('#gdpr');
      await p.uncheck('#region-1');
    },
  });
  const onChain = await read('termsOf', [1]);
  const surcharge = onChain.gdprSurchargeBps + onChain.regionSurchargeBps;
  const k = 10_000n + BigInt(surcharge);
  assert.equal(price, BigInt(terms.price), 'the quote gives the terms’ price, before the surcharge');
  assert.equal(await page.getAttribute('#quote-surcharge', 'data-bps'), String(surcharge), 'both surcharges shown');
  assert.equal(deposit, (price * BigInt(terms.maxDuration) * k) / 10_000n, 'the surcharge on the whole deposit, rounded once');
  const id = await pay(page);
  await waitStatus(page, 'active');
  const view = await api(`/api/agreements/${id}`);
  assert.equal(view.region, 0, 'the conference runs in the one region allowed');
  assert.equal(view.allowedRegions, 1);
  assert.equal(view.gdpr, true);
  assert.equal(view.deposit, deposit.toString());
  assert.equal(view.surchargeBps, surcharge);
  assert.equal(await page.getAttribute('#price', 'data-surcharge-bps'), String(surcharge));
  await advance(77);
  await page.click('#stop');
  await waitStatus(page, 'settled');
  const a = await read('agreementOf', [BigInt(id)]);
  assert.equal(a.price, price, 'the escrow keeps the terms’ price');
  assert.equal(a.surchargeBps, surcharge, 'and the surcharge beside it');
  const charge = (price * BigInt(a.endedAt - a.startedAt) * k) / 10_000n;
  const [settled] = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.args.charge, charge, 'charge = ⌊price × seconds used × (1 + surcharge)⌋');
  await page.locator('#charge-check').waitFor();
  assert.deepEqual(await shown(page), { charge, refund: deposit - charge, checked: 'true' });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('minutes with GDPR: a signed stop per session, the second submitted by the customer when the operator ignores it', { timeout: 300_000 }, async () => {
  const onChain = await read('termsOf', [3]);
  const k = 10_000n + BigInt(onChain.gdprSurchargeBps);
  const { page, deposit, price } = await chooseOffer(3, {
    fill: async (p) => {
      await p.fill('#minutes', '10');
      await p.check('#gdpr');
    },
  });
  assert.equal(deposit, (price * 10n * k) / 10_000n, '⌊price per minute × minutes × (1 + surcharge)⌋');
  const id = await pay(page);
  await waitStatus(page, 'idle');
  /** The chain's charge for a session of `used` seconds. */
  const sessionCharge = (used) => (price * used * k) / (60n * 10_000n);

  // Session 1: stopped by signature, submitted by the service with the settlement (the Stop names session 1).
  await page.click('#start');
  await waitStatus(page, 'active');
  await advance(61);
  const nonce = await chain.getTransactionCount({ address: customer });
  await page.click('#stop-signed');
  await page.locator('#settlement:not([hidden]) #charge-check').waitFor({ timeout: STATUS_TIMEOUT_MS });
  await waitStatus(page, 'idle');
  assert.equal(await chain.getTransactionCount({ address: customer }), nonce, 'no transaction to stop');
  assert.equal((await read('minutesAccountOf', [BigInt(id)])).sessions, 1);

  // Session 2: the service never hears of the stop (its answer is faked), so the agreement stays active
  // on-chain; after a while the page offers to submit the signed stop, which names session 2.
  await page.route('**/api/agreements/*/stop', (route) => route.fulfill({ status: 202, json: { accepted: true, stop: {} } }));
  await page.click('#start');
  await waitStatus(page, 'active');
  await advance(119);
  await page.click('#stop-signed');
  await page.locator('#stop-onchain').waitFor({ timeout: 60_000 });
  const held = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), `signed-stop:${id}`);
  assert.equal(held.session, 2, 'the second session’s stop names session 2');
  assert.equal((await read('agreementOf', [BigInt(id)])).status, 3, 'still active on-chain');
  await page.click('#stop-onchain');
  await waitStatus(page, 'idle');
  await page.unroute('**/api/agreements/*/stop');
  const ended = await eventsOf(id, 'AgreementEnded');
  assert.equal(ended.length, 2);
  assert.equal(ended[1].args.endedAt, BigInt(held.stoppedAt), 'it ends at the time the customer signed');
  assert.equal(ended[1].args.by.toLowerCase(), customer.toLowerCase(), 'submitted from the customer’s wallet');

  // Each session charged ⌊price × seconds × (1 + surcharge) ÷ 60⌋, as the page recomputes it.
  const activated = await eventsOf(id, 'AgreementActivated');
  const settled = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.length, 2);
  for (const [i, log] of settled.entries()) {
    const startedAt = (await chain.getBlock({ blockNumber: activated[i].blockNumber })).timestamp;
    assert.equal(log.args.charge, sessionCharge(ended[i].args.endedAt - startedAt), `session ${i + 1}`);
  }
  const charged = settled.reduce((sum, log) => sum + log.args.charge, 0n);
  await page.locator(`#charge-check[data-ok="true"][data-computed="${charged}"]`).waitFor();
  await page.click('#close');
  await waitStatus(page, 'settled');
  await page.locator(`#refund[data-wei="${deposit - charged}"]`).waitFor();
  assert.equal(await errorText(page), '');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('stablecoin: approve, pay, settle; token balances exact', { timeout: 240_000 }, async () => {
  const token = stack.config.tokens.find((t) => t.id !== 0);
  assert.ok(token?.address, 'the dev chain has a stablecoin');
  const stable = (await api('/api/offers')).find((t) => t.tokenId === token.id && t.open);
  assert.ok(stable, 'an offer priced in the stablecoin');
  const balance = (who) => chain.readContract({ address: token.address, abi: erc20Abi, functionName: 'balanceOf', args: [who] });
  const { page, deposit, price } = await chooseOffer(stable.id);
  await page.locator('#approve:not([hidden])').waitFor();
  assert.equal(await page.getAttribute('#pay', 'disabled'), '', 'no payment before the approval');
  const before = await balance(customer);
  const escrowBefore = await balance(stack.escrow);
  await page.click('#approve');
  await page.locator('#approve[hidden]').waitFor({ state: 'attached' });
  const id = await pay(page);
  assert.equal(await balance(customer), before - deposit);
  assert.equal(await balance(stack.escrow), escrowBefore + deposit);
  await waitStatus(page, 'active');
  await advance(300);
  await page.click('#stop');
  await waitStatus(page, 'settled');
  const a = await read('agreementOf', [BigInt(id)]);
  const charge = price * BigInt(a.endedAt - a.startedAt);
  const [settled] = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.args.charge, charge);
  assert.equal(await balance(customer), before - charge, 'the customer paid exactly the charge in tokens');
  await page.locator('#charge-check').waitFor();
  assert.deepEqual(await shown(page), { charge, refund: deposit - charge, checked: 'true' });
  await page.context().close();
});

// ---------------------------------------------------------------------------------------------
// Failures the customer must understand.
// ---------------------------------------------------------------------------------------------

test('a rejected signature: the page says so and nothing is sent', { timeout: 120_000 }, async () => {
  const page = await openPage(browser, stack.web, { account: customer, reject: 'eth_sendTransaction' });
  await chooseOffer(1, { page });
  const nonce = await chain.getTransactionCount({ address: customer });
  await page.click('#pay');
  await page.locator('#error:not([hidden])').waitFor();
  assert.match(await errorText(page), /rejected the request in your wallet: nothing was signed or sent/);
  assert.equal(await chain.getTransactionCount({ address: customer }), nonce);
  assert.equal(new URL(page.url()).pathname, '/');
  await page.context().close();
});

test('a wrong network: the page says so, offers to switch, and sends nothing', { timeout: 120_000 }, async () => {
  const page = await openPage(browser, stack.web, { account: customer, chainId: 1 });
  await page.locator('[data-testid="choose-1"]').waitFor();
  await page.click('#connect');
  await page.locator('#switch-network').waitFor();
  assert.match(await page.textContent('#network'), /Wrong network: your wallet is on chain 1/);
  assert.match(await errorText(page), /declined to switch networks/);
  await page.click('[data-testid="choose-1"]');
  await page.locator('#quote-deposit').waitFor();
  const nonce = await chain.getTransactionCount({ address: customer });
  await page.click('#pay');
  await page.locator('#error:not([hidden])', { hasText: 'another network' }).waitFor();
  assert.match(await errorText(page), /on another network \(chain 1\).*nothing was sent/);
  assert.equal(await chain.getTransactionCount({ address: customer }), nonce);
  const sent = await page.evaluate(() => window.__testWallet.requests.filter((m) => m === 'eth_sendTransaction').length);
  assert.equal(sent, 0, 'the wallet was never asked to send');
  await page.context().close();
});

// ---------------------------------------------------------------------------------------------
// Participants.
// ---------------------------------------------------------------------------------------------

test('participants are registered on the agreement page; the history lists the agreements', { timeout: 300_000 }, async () => {
  // The conference itself (on the Janus SFU) is room.test.mjs's: it needs a network namespace of its own.
  const [alice, bob] = [stack.accounts[6], stack.accounts[7]];
  const { page } = await chooseOffer(1);
  const id = await pay(page);
  await waitStatus(page, 'active');

  // The customer registers two participants on the agreement's page (the form has a row per expected participant).
  const rows = page.locator('[data-testid="participant-row"]');
  await rows.first().waitFor();
  while ((await rows.count()) < 2) await page.click('#add-participant');
  await rows.nth(0).locator('input[name=address]').fill(alice);
  await rows.nth(1).locator('input[name=address]').fill(bob);
  await page.selectOption('#participants-quality', 'hd');
  await page.click('#register');
  await page.locator('#participants-result[data-count="2"]').waitFor({ timeout: 30_000 });
  assert.equal(await errorText(page), '');
  await waitForProbes();
  await page.click('#stop');
  await waitStatus(page, 'settled');

  // The history lists every agreement of this customer, newest first, each linking to its page.
  await page.goto(new URL('/history', stack.web).href);
  await page.click('#connect');
  await page.locator('[data-testid="history-row"]').first().waitFor();
  const ids = await page.locator('[data-testid="history-row"]').evaluateAll((items) => items.map((tr) => Number(tr.dataset.agreementId)));
  assert.equal(ids[0], id, 'newest first');
  assert.deepEqual([...ids].sort((x, y) => y - x), ids);
  await screenshot(page, 'history');
  await page.context().close();
});

test('the offers fit a phone-sized screen and work from the keyboard', { timeout: 60_000 }, async () => {
  const page = await openPage(browser, stack.web, { account: customer, viewport: { width: 375, height: 800 } });
  await page.locator('[data-testid="choose-1"]').waitFor();
  await screenshot(page, 'offers-phone');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no horizontal scrolling at 375 px');
  // By keyboard: a real button takes Enter, and the terms form's heading takes the focus.
  await page.focus('[data-testid="choose-1"]');
  await page.keyboard.press('Enter');
  await page.locator('#quote-deposit').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H2');
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, 'offers');
  await page.context().close();
});
