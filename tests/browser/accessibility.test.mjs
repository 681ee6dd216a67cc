// Accessibility of every page in headless Chromium against the real local stack (harness.mjs): axe-core
// (its npm package, from anvil/node_modules, run inside the page) with the WCAG 2.1 A and AA rules on the
// offers at 1280 and 375 px wide (and with the terms form open), an agreement while it runs and once
// settled, the history, the account (with a deposit, a pending withdrawal and an exact figure's tooltip
// shown), the join page (and its refusal), the provider page and the audit page (empty, then with an
// agreement and its evidence open, and an account), each in the light and the dark colour scheme: any
// violation fails. Then what axe does not see: the tab order of a first load (the skip link first, focus
// left where the browser put it) against an in-app navigation (focus on the new page's content), a
// title per page, a focus ring of at least 3:1 against what surrounds it, and buttons named apart.
//
//   node --test tests/browser/accessibility.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { abi, launch, openPage, root, startStack, transact, viem, waitForAgreement } from './harness.mjs';

const { createPublicClient, http } = viem;
const escrowAbi = abi.ConferenceEscrow;
const bookAbi = abi.OfferBook;
const AXE = readFileSync(path.join(root, 'anvil/node_modules/axe-core/axe.min.js'), 'utf8');
/** axe's tags for WCAG 2.0 and 2.1, levels A and AA. */
const WCAG21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const SCHEMES = ['light', 'dark'];
const log = (...args) => console.log(...args);

let stack;
let browser;
let chain;
let cfg;
/** The agreement the pages show (signed in `before`'s test order: after the empty audit). */
let agreementId;

before(async () => {
  stack = await startStack();
  cfg = stack.config;
  browser = await launch();
  chain = createPublicClient({ transport: http(stack.rpc), cacheTime: 0 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop();
});

/** axe-core's WCAG 2.1 A and AA violations on `page` as it stands, one line each (rule, impact, what
 *  it says, the elements). */
async function violations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const found = await page.evaluate(async (tags) => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, WCAG21_AA);
  return found;
}

/** Fails with every violation on `page`, named `what` (and the colour scheme). */
async function assertAccessible(page, what) {
  const found = await violations(page);
  assert.deepEqual(found, [], `${what}: ${found.length} WCAG 2.1 A/AA violation(s):\n${found.join('\n')}`);
  assert.deepEqual(page.errors, [], `${what}: page errors`);
  log(`  ${what}: no violation`);
}

/** A page at `pathname` in colour scheme `scheme` (`options` as openPage's). */
async function open(pathname, scheme, options = {}) {
  const page = await openPage(browser, null, options);
  await page.emulateMedia({ colorScheme: scheme });
  await page.goto(new URL(pathname, stack.web).href);
  return page;
}

/** The offers, drawn and filled with the chain's details. */
async function offersReady(page) {
  await page.locator('[data-testid^="choose-"]').first().waitFor();
  await page.locator('[data-testid^="split-"]').first().waitFor({ state: 'attached' });
}

test('the audit page with no agreement yet: its table says so, and nothing fails axe', async () => {
  for (const scheme of SCHEMES) {
    const page = await open('/audit', scheme);
    await page.locator('#audit-summary[data-agreements="0"]').waitFor();
    assert.equal((await page.textContent('#agreements tbody')).trim(), 'No agreement has been signed on this escrow yet.');
    await assertAccessible(page, `audit, empty (${scheme})`);
    await page.context().close();
  }
});

test('the offers at 1280 and 375 px, with the terms form open, pass axe in both schemes', async () => {
  for (const scheme of SCHEMES) {
    for (const width of [1280, 375]) {
      const page = await open('/', scheme, { account: stack.customer, viewport: { width, height: 900 } });
      await offersReady(page);
      await assertAccessible(page, `offers at ${width} px (${scheme})`);
      await page.click('#connect');
      await page.locator('#account').waitFor();
      await page.click('[data-testid="choose-1"]');
      await page.locator('#quote-gas').waitFor();
      await assertAccessible(page, `offers at ${width} px, the terms form with its quote (${scheme})`);
      await page.context().close();
    }
  }
});

test('an agreement while it runs, the history and the join page (and its refusal) pass axe', async () => {
  const { termsId } = await chain.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerOf', args: [2] });
  const [deposit] = await chain.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'quote', args: [termsId, 0, false, 0n] });
  await transact(chain, { from: stack.customer, to: cfg.escrow, abi: escrowAbi, functionName: 'sign', args: [termsId, 0, false], value: deposit });
  agreementId = Number(await chain.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'agreementCount' }));
  await waitForAgreement(agreementId, (view) => view.status === 'active', { what: 'active' });
  log(`agreement ${agreementId} active`);
  const stranger = stack.accounts[7];
  for (const scheme of SCHEMES) {
    const agreement = await open(`/agreement/${agreementId}`, scheme, { account: stack.customer });
    await agreement.locator('#status[data-status="active"]').waitFor();
    await agreement.click('#connect');
    await agreement.locator('#account').waitFor();
    await agreement.locator('#join-link').waitFor();
    await assertAccessible(agreement, `agreement ${agreementId}, active (${scheme})`);
    await agreement.context().close();

    const history = await open('/history', scheme, { account: stack.customer });
    await history.click('#history-connect');
    await history.locator('[data-testid="history-row"]').first().waitFor();
    await assertAccessible(history, `history (${scheme})`);
    await history.context().close();

    const join = await open(`/join/${agreementId}`, scheme, { account: stranger });
    await join.locator('#join').waitFor();
    await assertAccessible(join, `join, the lobby (${scheme})`);
    await join.click('#join');
    await join.locator('#join-refused:not([hidden])').waitFor();
    await assertAccessible(join, `join, refused (${scheme})`);
    await join.context().close();
  }
});

test('the account page, with a deposit, a pending withdrawal and an exact figure focused, passes axe', async () => {
  // A deposit and a withdrawal request, so that every part of the page is drawn (and the audit page's
  // accounts table, checked below, has a row).
  await transact(chain, { from: stack.customer, to: cfg.escrow, abi: escrowAbi, functionName: 'depositToAccount', args: [0, 10n ** 17n], value: 10n ** 17n });
  await transact(chain, { from: stack.customer, to: cfg.escrow, abi: escrowAbi, functionName: 'requestWithdrawal', args: [0, 4n * 10n ** 16n] });
  for (const scheme of SCHEMES) {
    const page = await open('/account', scheme, { account: stack.customer });
    await page.click('#account-connect');
    await page.locator('#account-page[data-ready]').waitFor();
    await page.locator('#withdrawal-0[data-wei="40000000000000000"]').waitFor();
    await assertAccessible(page, `account (${scheme})`);
    // The exact figure's tooltip, shown on keyboard focus, is text on the page too.
    await page.focus('#free-0');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    assert.ok(await page.locator('#free-0-exact').evaluate((el) => el.getBoundingClientRect().width > 1), 'the exact figure shows on focus');
    await assertAccessible(page, `account, an exact figure focused (${scheme})`);
    await page.context().close();
  }
});

test('the provider page and the audit page with an agreement and its evidence pass axe', async () => {
  assert.ok(agreementId, 'an agreement was signed by the test before');
  await transact(chain, { from: stack.customer, to: cfg.escrow, abi: escrowAbi, functionName: 'stop', args: [BigInt(agreementId)] });
  await waitForAgreement(agreementId, (view) => view.status === 'settled', { what: 'settled' });
  const provider = stack.accounts[2];
  for (const scheme of SCHEMES) {
    const settled = await open(`/agreement/${agreementId}`, scheme, { account: stack.customer });
    await settled.locator('#charge-check').waitFor();
    await assertAccessible(settled, `agreement ${agreementId}, settled (${scheme})`);
    await settled.context().close();

    const page = await open('/provider', scheme, { account: provider });
    await page.click('#provider-connect');
    await page.locator('#main[data-ready]').waitFor();
    await assertAccessible(page, `provider (${scheme})`);
    await page.context().close();

    const audit = await open('/audit', scheme);
    await audit.locator('#audit-summary[data-agreements="1"]').waitFor();
    await audit.click(`button[data-toggle="${agreementId}"]`);
    await audit.locator(`[data-evidence-for="${agreementId}"] table.settlements`).waitFor();
    await assertAccessible(audit, `audit, one agreement with its evidence open (${scheme})`);
    await audit.context().close();
  }
});

/** What has focus: its id, else its tag and text. */
const focused = (page) =>
  page.evaluate(() => {
    const el = document.activeElement;
    return el?.id ? `#${el.id}` : `${el?.tagName.toLowerCase()} ${el?.textContent?.trim() ?? ''}`;
  });

test('a first load leaves focus alone (the skip link comes first); an in-app navigation moves it to the page', async () => {
  const page = await open('/', 'light');
  await offersReady(page);
  assert.ok(await page.evaluate(() => document.activeElement === document.body), `nothing focused on load, not ${await focused(page)}`);
  const order = [];
  for (let i = 0; i < 7; i++) {
    await page.keyboard.press('Tab');
    order.push(await focused(page));
  }
  assert.deepEqual(order, ['a Skip to content', 'a Conference escrow', 'a Offers', 'a My agreements', 'a Providers', 'a Audit', '#connect']);
  await page.click('nav a[href="/audit"]');
  await page.waitForURL(/\/audit$/);
  await page.waitForFunction(() => document.activeElement?.id === 'main');
  await page.goBack();
  await page.waitForFunction(() => location.pathname === '/' && document.activeElement?.id === 'main');
  await page.context().close();
});

test('each page has a title of its own', async () => {
  const titles = new Map();
  for (const [pathname, expected] of [
    ['/', 'Book a conference'],
    [`/agreement/${agreementId ?? 1}`, `Agreement ${agreementId ?? 1}`],
    ['/history', 'My agreements'],
    ['/account', 'My account'],
    [`/join/${agreementId ?? 1}`, `Join conference ${agreementId ?? 1}`],
    ['/provider', 'Providers'],
    ['/audit', 'Audit'],
    ['/no/such/page', 'Not found'],
  ]) {
    const page = await open(pathname, 'light');
    await page.waitForFunction((want) => document.title.startsWith(want), expected);
    titles.set(pathname, await page.title());
    await page.context().close();
  }
  assert.equal(new Set(titles.values()).size, titles.size, JSON.stringify([...titles]));
  for (const title of titles.values()) assert.match(title, / · Conference escrow$/);
});

/** WCAG's contrast ratio of two CSS colours `rgb(r, g, b)`. */
function contrast(a, b) {
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((c) => {
      const v = Number(c) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('the keyboard focus ring has at least 3:1 against what surrounds it, in both schemes', async () => {
  for (const scheme of SCHEMES) {
    const page = await open('/', scheme);
    await offersReady(page);
    // Focus by keyboard (what :focus-visible shows a ring for): to the button, back and forth.
    for (const target of ['[data-testid="choose-1"]', '#connect', 'nav a[href="/audit"]']) {
      await page.focus(target);
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Tab');
      const ring = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        // What the ring is drawn on: the first ancestor with an opaque background.
        let around = el.parentElement;
        while (around && getComputedStyle(around).backgroundColor.match(/rgba\(.*, 0\)$|transparent/)) around = around.parentElement;
        return {
          visible: el.matches(':focus-visible'),
          style: style.outlineStyle,
          width: parseFloat(style.outlineWidth),
          color: style.outlineColor,
          background: getComputedStyle(around ?? document.body).backgroundColor,
        };
      });
      assert.ok(ring.visible && ring.style === 'solid' && ring.width >= 2, `${target} (${scheme}): ${JSON.stringify(ring)}`);
      const ratio = contrast(ring.color, ring.background);
      assert.ok(ratio >= 3, `${target} (${scheme}): the ring ${ring.color} on ${ring.background} is ${ratio.toFixed(2)}:1`);
      log(`  ${target} (${scheme}): ring ${ring.color} on ${ring.background}, ${ratio.toFixed(2)}:1`);
    }
    await page.context().close();
  }
});

test('each offer’s buttons and toggles are named apart', async () => {
  const page = await open('/', 'light');
  await offersReady(page);
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  const named = (role) => nodes.filter((n) => !n.ignored && n.role?.value === role).map((n) => n.name?.value ?? '');
  const buttons = named('button');
  const toggles = named('DisclosureTriangle');
  const offers = await page.locator('[data-testid^="offer-"]').count();
  assert.equal(buttons.filter((n) => n.startsWith('Choose this offer')).length, offers, buttons.join(' | '));
  assert.equal(toggles.filter((n) => n.startsWith('Who gets what')).length, offers, toggles.join(' | '));
  for (const list of [buttons, toggles]) assert.equal(new Set(list).size, list.length, `names repeat: ${list.join(' | ')}`);
  await page.context().close();
});
