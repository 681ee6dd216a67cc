// The customer's account in headless Chromium against the real local stack (harness.mjs): a deposit in
// ETH (and in the stablecoin, after its approval) on the account page; a conference opened from the
// offers by one signed EIP-712 order (no transaction: the service's `POST /api/orders`, followed to the
// agreement), joined, stopped and settled, with the account's free balance back up by the refund and
// nothing left locked, to the wei, on the page and on-chain; then a withdrawal requested, not due until
// the activation window has passed (the chain's clock moved on), and completed into the wallet; the audit
// page recomputes the account from its events.
//
//   node --test tests/browser/account.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { abi, advance, launch, openPage, screenshot, startStack, viem } from './harness.mjs';

const { createPublicClient, http, parseEther } = viem;
const escrowAbi = abi.ConferenceEscrow;
const erc20Abi = [
  { type: 'function', name: 'balanceOf', stateMutability: 'view', inputs: [{ name: 'a', type: 'address' }], outputs: [{ type: 'uint256' }] },
];

const STATUS_TIMEOUT_MS = 90_000;
const log = (...args) => console.log(...args);

let stack;
let browser;
let chain;
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

const read = (functionName, args) => chain.readContract({ address: stack.escrow, abi: escrowAbi, functionName, args });
const accountOf = (tokenId) => read('accountOf', [customer, tokenId]);

/** The escrow's events about agreement `id`, decoded. */
const eventsOf = (id, eventName) =>
  chain.getContractEvents({ address: stack.escrow, abi: escrowAbi, eventName, args: { agreementId: BigInt(id) }, fromBlock: BigInt(stack.config.deployBlock) });

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

/** Fails at once with the page's error sentence, if it shows one. */
async function noError(page, what) {
  const error = (await page.locator('#error').isVisible()) ? (await page.textContent('#error')).trim() : '';
  assert.equal(error, '', `${what}: the page shows an error`);
}

/** Waits until the account page shows `free` and `locked` (base units) for token `tokenId`. */
async function waitBalance(page, tokenId, { free, locked }, what) {
  const section = page.locator(`section[data-token-id="${tokenId}"]`);
  const deadline = Date.now() + 30_000;
  let last;
  while (Date.now() < deadline) {
    await noError(page, what);
    last = { free: await section.getAttribute('data-free'), locked: await section.getAttribute('data-locked') };
    if (last.free === String(free) && last.locked === String(locked)) return;
    await page.waitForTimeout(250);
  }
  assert.fail(`${what}: the account page shows ${JSON.stringify(last)}, expected free ${free} and locked ${locked}`);
}

/** Waits for `selector` on `page`, failing at once with the page's error sentence if it shows one. */
async function waitFor(page, selector, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    await noError(page, `waiting for ${selector}`);
    if (await page.locator(selector).count()) return;
    await page.waitForTimeout(200);
  }
  throw new Error(`${selector} did not appear within ${timeout / 1000} s`);
}

/** Waits until the agreement page's `#status` says `status`, failing at once on the page's error sentence. */
async function waitStatus(page, status) {
  const deadline = Date.now() + STATUS_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    await noError(page, `waiting for "${status}"`);
    const current = (await page.getAttribute('#status', 'data-status').catch(() => '')) ?? '';
    if (current !== last) log(`  status: ${(last = current) || '(none yet)'}`);
    if (current === status) return;
    await page.waitForTimeout(200);
  }
  throw new Error(`the status did not reach "${status}" within ${STATUS_TIMEOUT_MS / 1000} s (last: "${last}")`);
}

test('deposit, open a conference by one signature, join, stop: the balance moves to the wei; withdraw after the window', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, new URL('/account', stack.web).href, { account: customer });
  // The navigation links the account page for a connected customer only.
  assert.equal(await page.locator('nav a[href="/account"]').isVisible(), false, 'no account link before connecting');
  await page.click('#account-connect');
  await page.locator('#account-page[data-ready]').waitFor();
  assert.ok(await page.locator('nav a[href="/account"]').isVisible(), 'the account link once connected');
  await waitBalance(page, 0, { free: 0n, locked: 0n }, 'a fresh account');

  // A deposit of 1 ETH: one transaction, all of it free.
  const deposit = parseEther('1');
  await page.fill('#deposit-amount-0', '1');
  await page.click('#deposit-0');
  await waitBalance(page, 0, { free: deposit, locked: 0n }, 'after the deposit');
  assert.deepEqual(await accountOf(0), { free: deposit, locked: 0n, withdrawal: 0n, withdrawalAt: 0 });

  // The rounded figure with the exact one on hover (title) and on focus (the tooltip it points at).
  const figure = page.locator('#free-0');
  assert.equal(await figure.getAttribute('data-wei'), String(deposit));
  assert.match(await figure.getAttribute('title'), new RegExp(`exactly 1 ETH: ${deposit} wei`));
  assert.equal(await figure.getAttribute('aria-describedby'), 'free-0-exact');
  assert.equal(await page.locator('#free-0-exact').textContent(), await figure.getAttribute('title'));
  assert.equal(await page.locator('#free-0-exact').evaluate((el) => el.getBoundingClientRect().width), 1, 'hidden until focused');
  // Onto the figure by the keyboard (what :focus-visible answers): its tooltip shows.
  await page.focus('#free-0');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'free-0');
  assert.ok(await page.locator('#free-0-exact').evaluate((el) => el.getBoundingClientRect().width > 1), 'the exact figure shows on keyboard focus');
  await screenshot(page, 'account-deposited');

  // The stablecoin: the approval first, then the deposit.
  const usdc = stack.config.tokens.find((t) => t.address);
  const units = 25n * 10n ** BigInt(usdc.decimals);
  const walletUnits = await chain.readContract({ address: usdc.address, abi: erc20Abi, functionName: 'balanceOf', args: [customer] });
  await page.fill(`#deposit-amount-${usdc.id}`, '25');
  await page.locator(`#deposit-approve-${usdc.id}:not([hidden])`).waitFor();
  assert.ok(await page.locator(`#deposit-${usdc.id}`).isDisabled(), 'no deposit before the approval');
  await page.click(`#deposit-approve-${usdc.id}`);
  await page.locator(`#deposit-approve-${usdc.id}[hidden]`).waitFor({ state: 'attached' });
  await page.locator(`#deposit-${usdc.id}:not([disabled])`).waitFor();
  await page.click(`#deposit-${usdc.id}`);
  await waitBalance(page, usdc.id, { free: units, locked: 0n }, 'after the stablecoin deposit');
  assert.equal(await chain.readContract({ address: usdc.address, abi: erc20Abi, functionName: 'balanceOf', args: [customer] }), walletUnits - units);

  // A conference from the account: the offers page signs an order (no transaction) for the dynamic price.
  await page.click('nav a[href="/"]');
  await page.click('[data-testid="choose-1"]');
  await waitFor(page, '#pay-from-account:not([hidden])');
  const lock = BigInt(await page.getAttribute('#quote-account-lock', 'data-units'));
  const price = BigInt(await page.getAttribute('#quote-price', 'data-units'));
  const [quoted] = await read('quote', [1, 0, false, 0n]);
  assert.equal(lock, quoted, 'the order locks the deposit of the longest conference, as the contract computes it');
  assert.equal(BigInt(await page.getAttribute('#quote-account-free', 'data-units')), deposit);
  const txCount = await chain.getTransactionCount({ address: customer });
  await page.evaluate(() => (window.__testWallet.requests.length = 0));
  await page.click('#pay-from-account');
  await waitFor(page, '#order-status[data-status="pending"]');
  await waitFor(page, '#agreement-title', 60_000);
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  const requests = await page.evaluate(() => window.__testWallet.requests);
  assert.ok(requests.includes('eth_signTypedData_v4'), `one signature: ${requests.join(', ')}`);
  assert.ok(!requests.includes('eth_sendTransaction'), 'no transaction');
  assert.equal(await chain.getTransactionCount({ address: customer }), txCount, 'the customer sent nothing');
  const [filled] = await eventsOf(id, 'OrderFilled');
  assert.equal(filled.args.customer, customer);
  const [signed] = await eventsOf(id, 'AgreementSigned');
  assert.equal(signed.args.deposit, lock);
  assert.deepEqual(await accountOf(0), { free: deposit - lock, locked: lock, withdrawal: 0n, withdrawalAt: 0 });
  log(`agreement ${id} opened from the account (nonce ${filled.args.nonce}), locking ${lock}`);

  // The same progress page as a direct agreement; the customer joins it.
  await waitStatus(page, 'active');
  await page.click('#join-now');
  await page.waitForURL(new RegExp(`/join/${id}$`));
  await page.click('#join');
  await page.locator('#room').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#join-refused').isVisible(), false, 'the customer is let in');
  await page.click('#leave');
  await page.goto(new URL(`/agreement/${id}`, stack.web).href);
  await page.locator('#status[data-status="active"]').waitFor();

  await advance(600);
  await page.click('#connect');
  await page.locator('#account').waitFor();
  await page.click('#stop');
  await waitStatus(page, 'settled');
  // The progress page says where the lock came from and where the refund went.
  assert.equal(await page.getAttribute('#from-account', 'data-nonce'), String(filled.args.nonce));
  await page.locator('#refund-to-account').waitFor();
  const a = await read('agreementOf', [BigInt(id)]);
  const [ended] = await eventsOf(id, 'AgreementEnded');
  const used = BigInt(ended.args.endedAt) - BigInt(a.startedAt);
  const [settled] = await eventsOf(id, 'AgreementSettled');
  assert.equal(settled.args.charge, price * used, 'charge = price × seconds used');
  assert.equal(settled.args.refund, lock - price * used, 'refund = lock − charge');
  assert.equal(settled.args.refundDeferred, true, 'credited to the account, not sent');
  const free = deposit - settled.args.charge;
  log(`settled: ${used} s used, charge ${settled.args.charge}, refund ${settled.args.refund} back to free`);

  // The account page: free back up by the refund, nothing locked, to the wei; the conference settled.
  await page.click('nav a[href="/account"]');
  await waitBalance(page, 0, { free, locked: 0n }, 'after the settlement');
  assert.equal(await page.getAttribute('#free-0', 'data-wei'), String(free));
  assert.equal(await page.getAttribute('#locked-0', 'data-wei'), '0');
  const row = page.locator(`[data-testid="account-agreement"][data-agreement-id="${id}"]`);
  assert.equal(await row.getAttribute('data-status'), 'settled');
  assert.equal(await row.locator('[data-figure="charge"]').getAttribute('data-wei'), String(settled.args.charge));
  assert.equal(await row.locator('[data-figure="refund"]').getAttribute('data-wei'), String(settled.args.refund));
  await screenshot(page, 'account-settled');

  // Withdraw all that is free: requested now, due once the activation window has passed.
  await page.click('#request-withdrawal-0');
  await page.locator(`#withdrawal-0[data-wei="${free}"]`).waitFor();
  const dueAt = Number(await page.getAttribute('#withdrawal-0', 'data-due-at'));
  const activationWindow = Number(await read('ACTIVATION_WINDOW'));
  const requested = await accountOf(0);
  assert.equal(requested.withdrawal, free);
  assert.equal(dueAt, requested.withdrawalAt + activationWindow);
  assert.ok(await page.locator('#complete-withdrawal-0').isDisabled(), 'not due yet');
  await screenshot(page, 'account-withdrawal-requested');

  await advance(activationWindow + 1);
  await page.locator('#complete-withdrawal-0:not([disabled])').waitFor({ timeout: 20_000 });
  const before = await chain.getBalance({ address: customer });
  const since = await chain.getBlockNumber();
  await page.click('#complete-withdrawal-0');
  await waitBalance(page, 0, { free: 0n, locked: 0n }, 'after the withdrawal');
  await page.locator('#withdrawal-0[data-wei="0"]').waitFor();
  const gas = await gasSpentSince(customer, since);
  assert.equal((await chain.getBalance({ address: customer })) - before, free - gas, 'the wallet received exactly what was free');
  const [withdrawn] = await chain.getContractEvents({ address: stack.escrow, abi: escrowAbi, eventName: 'AccountWithdrawn', args: { customer }, fromBlock: since });
  assert.equal(withdrawn.args.amount, free);

  // The orders this browser signed and the service did not open are cancelled by their nonces' word: the
  // opened one stays opened, a next nonce of the word can no longer be used.
  const cancelledFrom = await chain.getBlockNumber();
  await page.click('#cancel-orders');
  await page.locator('#account-orders:not(:has(#cancel-orders))').waitFor({ timeout: 20_000 });
  const [cancelled] = await chain.getContractEvents({ address: stack.escrow, abi: escrowAbi, eventName: 'OrdersCancelled', args: { customer }, fromBlock: cancelledFrom });
  assert.equal(cancelled.args.mask, (1n << 256n) - 1n, 'every nonce of the word');
  assert.equal(await read('orderNonceUsed', [customer, (cancelled.args.word << 8n) | 255n]), true, 'an unused nonce of the word is now unusable');
  assert.deepEqual(page.errors, []);
  await page.context().close();

  // The audit page recomputes both accounts from their events, with no wallet.
  const audit = await openPage(browser, new URL('/audit', stack.web).href);
  await audit.locator('#accounts-summary[data-accounts="2"]').waitFor({ timeout: 60_000 });
  assert.equal(await audit.getAttribute('#accounts-summary', 'data-mismatches'), '0');
  const eth = audit.locator(`tr[data-account="${customer}:0"]`);
  assert.equal(await eth.locator('[data-figure="deposits"]').getAttribute('data-wei'), String(deposit));
  assert.equal(await eth.locator('[data-figure="charges"]').getAttribute('data-wei'), String(settled.args.charge));
  assert.equal(await eth.locator('[data-figure="withdrawals"]').getAttribute('data-wei'), String(free));
  assert.equal(await eth.locator('[data-figure="free"]').getAttribute('data-wei'), '0');
  await audit.locator('#audit-summary[data-agreements]').waitFor();
  assert.equal(await audit.getAttribute(`#agreement-${id}`, 'data-mismatch'), null, 'the agreement opened from the account agrees with the formulas');
  assert.deepEqual(audit.errors, []);
  await audit.context().close();
});
