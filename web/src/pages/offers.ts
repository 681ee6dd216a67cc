// The offers (`/`): every open terms version grouped by pricing model, with its price split among
// its providers and its constraints as the chain stores them; a terms form per offer with a live quote
// read from the escrow (`quote`), the gas estimate, and payment in ETH or the stablecoin (approval
// first). A signed agreement opens its own page.
import { nextOrderNonce, ORDER_TYPES, ORDER_VALID_S, orderDomain, readAccount } from '../accounts';
import { api, ApiError, type Terms } from '../api';
import {
  bookAbi,
  erc20Abi,
  escrowAbi,
  MODELS,
  publicClient,
  registryAbi,
  tokenErrorsAbi,
  type ChainTerms,
} from '../chain';
import { config, regionNames, token as tokenOf, type Config, type TokenInfo } from '../config';
import { h, replace, showError, showNotice } from '../dom';
import { UserError, userMessage } from '../errors';
import { formatAmount, formatBps, formatDuration, formatSurcharged } from '../format';
import { accountLock, depositFor } from '../pricing';
import { navigate, type Page } from '../router';
import type { Call } from '../wallet';

/** What each model sells, in one sentence. */
const MODEL_TEXT: Record<string, { title: string; sentence: string; unit: string }> = {
  fixedPrice: {
    title: 'Fixed price',
    sentence: 'One conference up to the offer’s longest duration, for one price whatever the time used. It all comes back if the conference never starts or its availability falls below 75%.',
    unit: 'per conference',
  },
  dynamicPrice: {
    title: 'Pay per second',
    sentence: 'One conference up to the offer’s longest duration. You lock the price of the longest conference and pay for the seconds it runs; every unused second comes back.',
    unit: 'per second',
  },
  timeLimited: {
    title: 'Minutes',
    sentence: 'Buy minutes and use them in as many sessions as you like; close the account to get the unused minutes back.',
    unit: 'per minute',
  },
  flexiblePeriod: {
    title: 'Reserved window',
    sentence: 'Reserve a window and start the conference any time inside it. A minimum charge keeps the service ready and does not come back; each second used is paid, the rest comes back.',
    unit: 'per second',
  },
};

const ROLES = ['infrastructure', 'conference software', 'monitoring', 'other'];
const QUALITIES = [
  ['sd', 'Standard (SD)'],
  ['hd', 'High (HD)'],
  ['fullhd', 'Full HD'],
] as const;

/** An amount as text with its exact smallest units in `data-units` for tests and screen readers. */
function amount(value: bigint, token: TokenInfo, id?: string): HTMLElement {
  return h('span', { class: 'amount', id, 'data-testid': id, 'data-units': value.toString() }, formatAmount(value, token));
}

/** A `datetime-local` value for unix seconds (local time), and back. */
function toLocalInput(unix: number): string {
  const d = new Date(unix * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(value: string): number | null {
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/** One offer as the page shows it: the service's listing and the escrow's copy of its terms. */
interface Offer {
  terms: Terms;
  chain: ChainTerms | null;
  token: TokenInfo;
}

/** What the escrow, the book and the registry add to the service's listing: each offer's terms as the
 *  escrow stores them (null where the chain did not answer), its providers' roles, and each offer's
 *  current terms version (a vote may have replaced a listed one). */
interface ChainDetails {
  terms: Map<number, ChainTerms | null>;
  roles: Map<number, string>;
  current: Map<number, number>;
}

/** The chain's details of `listed`, in two rounds of reads (each one multicall: chain.ts). */
async function readDetails(cfg: Config, listed: Terms[]): Promise<ChainDetails> {
  const reader = publicClient(cfg);
  const terms = new Map<number, ChainTerms | null>();
  const current = new Map<number, number>();
  await Promise.all([
    ...listed.map(async (t) => {
      const chain = await reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'termsOf', args: [t.id] }).catch(() => null);
      terms.set(t.id, chain as ChainTerms | null);
    }),
    ...[...new Set(listed.map((t) => t.offerId))].map(async (offerId) => {
      const o = (await reader.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerOf', args: [offerId] }).catch(() => null)) as { termsId: number } | null;
      if (o) current.set(offerId, Number(o.termsId));
    }),
  ]);
  // The providers' roles, for the division of income.
  const roles = new Map<number, string>();
  const providerIds = [...new Set([...terms.values()].flatMap((chain) => chain?.shares.map((s) => s.providerId) ?? []))];
  await Promise.all(
    providerIds.map(async (id) => {
      const p = (await reader.readContract({ address: cfg.registry, abi: registryAbi, functionName: 'providerOf', args: [id] }).catch(() => null)) as { role: number } | null;
      if (p) roles.set(id, ROLES[p.role] ?? 'provider');
    }),
  );
  return { terms, roles, current };
}

const page: Page = async (root) => {
  const intro = () => [
    h('h1', {}, 'Book a conference'),
    h('p', { class: 'hint' }, 'Your money is locked in the escrow contract, not paid to anyone: providers are paid for what the conference used, and the rest comes back to you.'),
  ];
  replace(root, ...intro(), h('p', { id: 'offers-loading', class: 'hint' }, 'Loading the offers…'));
  // The offers are drawn from the service's listing at once; what only the chain knows (surcharges, the
  // division of income, a vote that replaced the terms) fills in when the chain answers.
  const [cfg, all] = await Promise.all([config(), api.offers()]);
  const listed = all.filter((t) => t.open).sort((a, b) => a.id - b.id);
  const offers: Offer[] = listed.map((terms) => ({ terms, token: tokenOf(cfg, terms.tokenId), chain: null }));
  const details = readDetails(cfg, listed);

  const formSlot = h('section', { id: 'terms', 'aria-label': 'Your terms' });
  const cards: { offer: Offer; fill: (details: ChainDetails) => void }[] = [];
  const groups = MODELS.map((model) => {
    const ofModel = offers.filter((o) => o.terms.model === model);
    if (ofModel.length === 0) return null;
    const text = MODEL_TEXT[model];
    return h(
      'section',
      { class: 'model-group', 'data-model': model, 'aria-labelledby': `model-${model}` },
      h('h2', { id: `model-${model}` }, text.title),
      h('p', { class: 'hint' }, text.sentence),
      h(
        'ul',
        { class: 'offers' },
        ...ofModel.map((o) => {
          const card = offerCard(cfg, o, () => void choose(o));
          cards.push({ offer: o, fill: card.fill });
          return card.element;
        }),
      ),
    );
  });
  replace(root, ...intro(), offers.length ? null : h('p', {}, 'No offer is open right now: come back later.'), ...groups, formSlot);

  let closed = false;
  void details.then((d) => {
    if (closed) return;
    for (const { offer, fill } of cards) {
      offer.chain = d.terms.get(offer.terms.id) ?? null;
      fill(d);
    }
  });

  let stopForm: (() => void) | undefined;
  async function choose(o: Offer): Promise<void> {
    stopForm?.();
    showError(null);
    try {
      // The form names the surcharges: it waits for the chain's copy of the terms (read by now, mostly).
      o.chain = (await details).terms.get(o.terms.id) ?? null;
      stopForm = await termsForm(cfg, o, formSlot);
    } catch (err) {
      showError(userMessage(err));
      return;
    }
    formSlot.querySelector<HTMLElement>('h2')?.focus();
  }
  return () => {
    closed = true;
    stopForm?.();
  };
};
export default page;

/** An offer's card from the service's listing, and the function that adds what the chain says. Every
 *  figure the chain gives has its place from the start (an ellipsis until it is read), so the cards
 *  do not move when it arrives. */
function offerCard(cfg: Config, o: Offer, onChoose: () => void): { element: HTMLElement; fill: (details: ChainDetails) => void } {
  const { terms, token } = o;
  const text = MODEL_TEXT[terms.model];
  const price = BigInt(terms.price);
  const served = regionNames(cfg, terms.regions).join(', ') || 'none';
  const regionSurcharge = h('span', {}, ' (allowing fewer: +…)');
  const gdprSurcharge = h('span', {}, terms.gdpr ? ' (requiring it: +…)' : '');
  const split = h(
    'details',
    { class: 'split' },
    h('summary', {}, 'Who gets what', h('span', { class: 'visually-hidden' }, ` for offer ${terms.offerId}, terms ${terms.id}`)),
    h('p', { class: 'hint' }, 'Reading the division of income from the escrow…'),
  );
  const closing = h('p', { class: 'hint', hidden: true }, 'The providers voted new terms for this offer: this version is closing.');
  const element = h(
    'li',
    { class: 'offer card', 'data-terms-id': terms.id, 'data-testid': `offer-${terms.id}` },
    h('h3', {}, `Offer ${terms.offerId}`, h('span', { class: 'hint' }, ` · terms ${terms.id} · paid in ${token.symbol}`)),
    h('p', { class: 'price' }, amount(price, token), ` ${text.unit}`),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, terms.model === 'timeLimited' ? 'At most' : terms.model === 'flexiblePeriod' ? 'Longest window' : 'Longest conference'),
      h('dd', {}, formatDuration(terms.maxDuration)),
      terms.model === 'flexiblePeriod' ? h('dt', {}, 'Minimum charge') : null,
      terms.model === 'flexiblePeriod' ? h('dd', {}, amount(BigInt(terms.minimumCharge), token), ' (not refundable)') : null,
      h('dt', {}, 'Regions'),
      h('dd', {}, served, regionSurcharge),
      h('dt', {}, 'GDPR'),
      h('dd', {}, terms.gdpr ? 'every provider is compliant' : 'not available', gdprSurcharge),
    ),
    split,
    closing,
    h(
      'button',
      { type: 'button', 'data-testid': `choose-${terms.id}`, 'data-terms-id': terms.id, onclick: onChoose },
      'Choose this offer',
      h('span', { class: 'visually-hidden' }, ` ${terms.offerId} (terms ${terms.id})`),
    ),
  );
  const fill = ({ terms: chainTerms, roles, current }: ChainDetails) => {
    const chain = chainTerms.get(terms.id) ?? null;
    regionSurcharge.textContent = chain ? ` (allowing fewer: +${formatBps(chain.regionSurchargeBps)})` : '';
    gdprSurcharge.textContent = chain && terms.gdpr ? ` (requiring it: +${formatBps(chain.gdprSurchargeBps)})` : '';
    closing.hidden = current.get(terms.offerId) === undefined || current.get(terms.offerId) === terms.id;
    if (!chain) {
      split.replaceWith(h('p', { class: 'hint' }, 'The chain did not answer: the division of income is not shown.'));
      return;
    }
    const total = chain.shares.reduce((sum, s) => sum + s.component, 0n) + chain.margin;
    split.lastElementChild!.replaceWith(
      h(
        'ul',
        { 'data-testid': `split-${terms.id}` },
        ...chain.shares.map((s) =>
          h('li', { 'data-provider-id': s.providerId }, `Provider ${s.providerId} (${roles.get(s.providerId) ?? 'provider'}): `, amount(s.component, token), ` ${text.unit}`, total ? ` (${formatBps(Number((s.component * 10000n) / total))})` : ''),
        ),
        h('li', {}, 'The offer’s owner (margin): ', amount(chain.margin, token), ` ${text.unit}`),
      ),
    );
  };
  return { element, fill };
}

/** What the customer asked for, read from the form; throws a sentence when something is missing. */
interface Wanted {
  allowedRegions: number;
  gdpr: boolean;
  quantity: bigint;
  minutes: number;
  from: number;
  to: number;
  expected: { region: number; count: number }[];
  quality: 'sd' | 'hd' | 'fullhd';
}

async function termsForm(cfg: Config, o: Offer, slot: HTMLElement): Promise<() => void> {
  const { terms, chain, token } = o;
  const reader = publicClient(cfg);
  // Paying signs: the wallet's code loads with the form, not with the offers.
  const { account, connect, eventsOf, gasCost, onServiceChain, onWalletChange, send, signTypedData } = await import('../wallet');
  const model = terms.model;
  const text = MODEL_TEXT[model];
  const chainNow = Number((await reader.getBlock({ blockTag: 'latest' })).timestamp);
  const from0 = Math.floor(chainNow / 60) * 60;

  const minutes = h('input', { type: 'number', id: 'minutes', name: 'minutes', min: 1, max: Math.floor(terms.maxDuration / 60), value: Math.min(30, Math.floor(terms.maxDuration / 60)), required: true, inputmode: 'numeric' });
  const windowFrom = h('input', { type: 'datetime-local', id: 'window-from', name: 'from', value: toLocalInput(from0), required: true });
  const windowTo = h('input', { type: 'datetime-local', id: 'window-to', name: 'to', value: toLocalInput(from0 + Math.min(terms.maxDuration, 3600)), required: true });
  const expected = cfg.regions.map((name, bit) =>
    h('label', { class: 'inline' }, `${name} `, h('input', { type: 'number', min: 0, max: 1000, value: bit === 0 ? 2 : 0, id: `expect-${bit}`, 'data-region': bit, class: 'count', inputmode: 'numeric' })),
  );
  const quality = h('select', { id: 'quality', name: 'quality' }, ...QUALITIES.map(([v, label]) => h('option', { value: v, selected: v === 'hd' }, label)));
  const regionBoxes = cfg.regions.map((name, bit) => {
    const servedHere = ((terms.regions >> bit) & 1) === 1;
    return h(
      'label',
      { class: 'inline' },
      h('input', { type: 'checkbox', name: 'region', value: bit, id: `region-${bit}`, checked: servedHere, disabled: !servedHere }),
      ` ${name}${servedHere ? '' : ' (not served)'}`,
    );
  });
  const gdpr = h('input', { type: 'checkbox', id: 'gdpr', name: 'gdpr', disabled: !terms.gdpr });
  const quoteBox = h('div', { id: 'quote', class: 'quote', 'aria-live': 'polite', 'data-testid': 'quote' }, h('p', { class: 'hint' }, 'Reading the quote from the escrow…'));
  const approve = h('button', { type: 'button', id: 'approve', 'data-testid': 'approve', hidden: true }, 'Approve');
  const pay = h('button', { type: 'submit', id: 'pay', 'data-testid': 'pay', disabled: true }, 'Pay');
  // Or one signature, no transaction: an order the operator opens from the customer's account.
  const fromAccount = h('button', { type: 'button', id: 'pay-from-account', 'data-testid': 'pay-from-account', class: 'secondary', hidden: true }, 'From my account');
  const orderStatus = h('p', { id: 'order-status', class: 'hint', 'aria-live': 'polite', hidden: true, 'data-status': '' });
  const form = h(
    'form',
    { id: 'terms-form', class: 'card', 'data-terms-id': terms.id, novalidate: true },
    h('h2', { tabindex: -1 }, `Your terms for offer ${terms.offerId}`),
    h('p', { class: 'hint' }, text.sentence),
    model === 'timeLimited'
      ? h('p', {}, h('label', { for: 'minutes' }, 'Minutes to buy'), minutes, h('span', { class: 'hint' }, ` at most ${Math.floor(terms.maxDuration / 60)}`))
      : model === 'flexiblePeriod'
        ? h(
            'fieldset',
            {},
            h('legend', {}, `Window (at most ${formatDuration(terms.maxDuration)})`),
            h('p', {}, h('label', { for: 'window-from' }, 'From'), windowFrom),
            h('p', {}, h('label', { for: 'window-to' }, 'To'), windowTo),
          )
        : h('p', {}, `Longest conference: ${formatDuration(terms.maxDuration)} (the offer’s). ${model === 'dynamicPrice' ? 'You pay for the seconds used.' : ''}`),
    h('fieldset', {}, h('legend', {}, 'Expected participants, by region'), ...expected),
    h('p', {}, h('label', { for: 'quality' }, 'Quality'), quality),
    h('fieldset', {}, h('legend', {}, `Where the conference may run${chain ? ` (fewer than all: +${formatBps(chain.regionSurchargeBps)})` : ''}`), ...regionBoxes),
    h('p', {}, h('label', { class: 'inline' }, gdpr, ` Every provider GDPR-compliant${terms.gdpr ? (chain ? ` (+${formatBps(chain.gdprSurchargeBps)})` : '') : ' (not available for this offer)'}`)),
    quoteBox,
    h('div', { class: 'row' }, approve, pay, fromAccount),
    orderStatus,
  );
  replace(slot, form);

  function wanted(): Wanted {
    let allowedRegions = 0;
    for (const box of regionBoxes.map((l) => l.querySelector('input')!)) if (box.checked) allowedRegions |= 1 << Number(box.value);
    if (allowedRegions === 0) throw new UserError('Allow at least one region for the conference.');
    let quantity = 0n;
    let m = 0;
    let from = 0;
    let to = 0;
    if (model === 'timeLimited') {
      m = Number(minutes.value);
      if (!Number.isInteger(m) || m < 1 || m * 60 > terms.maxDuration) throw new UserError(`Buy from 1 to ${Math.floor(terms.maxDuration / 60)} whole minutes.`);
      quantity = BigInt(m);
    } else if (model === 'flexiblePeriod') {
      const f = fromLocalInput(windowFrom.value);
      const t = fromLocalInput(windowTo.value);
      if (f === null || t === null) throw new UserError('Enter both ends of the window.');
      if (t <= f) throw new UserError('The window must end after it starts.');
      if (t - f > terms.maxDuration) throw new UserError(`The window may last at most ${formatDuration(terms.maxDuration)}.`);
      from = f;
      to = t;
      quantity = BigInt(t - f);
    }
    const expectedCounts = expected
      .map((l) => l.querySelector('input')!)
      .map((input) => ({ region: Number(input.dataset.region), count: Math.max(0, Math.floor(Number(input.value) || 0)) }))
      .filter((e) => e.count > 0);
    return { allowedRegions, gdpr: gdpr.checked, quantity, minutes: m, from, to, expected: expectedCounts, quality: quality.value as Wanted['quality'] };
  }

  function callFor(w: Wanted, deposit: bigint): Call {
    const base = { address: cfg.escrow, abi: [...escrowAbi, ...tokenErrorsAbi], value: token.address === null ? deposit : undefined };
    if (model === 'timeLimited') return { ...base, functionName: 'buyMinutes', args: [terms.id, w.allowedRegions, w.gdpr, w.minutes] };
    if (model === 'flexiblePeriod') return { ...base, functionName: 'reserve', args: [terms.id, w.allowedRegions, w.gdpr, w.from, w.to] };
    return { ...base, functionName: 'sign', args: [terms.id, w.allowedRegions, w.gdpr] };
  }

  /** The quote as last read: what paying sends, whether an approval is missing, and (with a wallet) what
   *  an order from the account would lock and whether its free balance covers it. */
  let last: { w: Wanted; deposit: bigint; needsApproval: boolean; lock: bigint; covered: boolean } | null = null;
  let seq = 0;
  let busy = false;

  async function quote(): Promise<void> {
    const mine = ++seq;
    last = null;
    pay.disabled = true;
    approve.hidden = true;
    fromAccount.hidden = true;
    let w: Wanted;
    try {
      w = wanted();
    } catch (err) {
      replace(quoteBox, h('p', { class: 'alert', 'data-testid': 'quote-error' }, userMessage(err)));
      return;
    }
    try {
      const [deposit, price, surchargeBps] = (await reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'quote', args: [terms.id, w.allowedRegions, w.gdpr, w.quantity] })) as [bigint, bigint, number];
      // The part that cannot come back: FlexiblePeriod's minimum charge (after the surcharge), i.e. the
      // deposit less what the window's seconds cost.
      const minimum = model === 'flexiblePeriod' ? deposit - depositFor(model, price, surchargeBps, w.quantity, 0n) : 0n;
      const who = account();
      let needsApproval = false;
      // From the account, every model is one conference of at most the terms' longest: it locks that one's deposit.
      const lock = accountLock(model, price, surchargeBps, chain?.maxDuration ?? terms.maxDuration, chain?.minimumCharge ?? BigInt(terms.minimumCharge));
      let free: bigint | null = null;
      let gasLine: HTMLElement | string = who ? 'Switch your wallet to the service’s network to estimate the gas.' : 'Connect your wallet to estimate the gas.';
      if (who && onServiceChain(cfg)) {
        const [allowance, held] = await Promise.all([
          token.address === null ? null : (reader.readContract({ address: token.address, abi: erc20Abi, functionName: 'allowance', args: [who, cfg.escrow] }) as Promise<bigint>),
          readAccount(reader, cfg, who, token.id).catch(() => null),
        ]);
        needsApproval = allowance !== null && allowance < deposit;
        free = held?.free ?? null;
        const gasCall: Call = needsApproval ? { address: token.address!, abi: erc20Abi, functionName: 'approve', args: [cfg.escrow, deposit] } : callFor(w, deposit);
        try {
          const { gas, gasPrice } = await gasCost(cfg, gasCall, who);
          const eth = tokenOf(cfg, 0);
          gasLine = h('span', { id: 'quote-gas', 'data-testid': 'quote-gas', 'data-wei': (gas * gasPrice).toString(), 'data-gas': gas.toString() }, `about ${formatAmount(gas * gasPrice, eth)} (${gas} gas${needsApproval ? ', the approval; paying costs about as much again' : ''})`);
        } catch (err) {
          gasLine = h('span', { class: 'alert', 'data-testid': 'quote-error' }, userMessage(err));
        }
      }
      if (mine !== seq) return;
      const refundable =
        model === 'fixedPrice'
          ? ['all of it if the conference never starts or its availability falls below 75%; otherwise the price is paid: ', amount(deposit, token, 'quote-refundable')]
          : model === 'flexiblePeriod'
            ? ['up to ', amount(deposit - minimum, token, 'quote-refundable'), ': every second not used; the minimum charge of ', amount(minimum, token, 'quote-minimum'), ' does not come back']
            : ['up to ', amount(deposit, token, 'quote-refundable'), model === 'timeLimited' ? ': every minute not used, when you close the account' : ': every second not used'];
      replace(
        quoteBox,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Price'),
          h('dd', {}, amount(price, token, 'quote-price'), ` ${text.unit}`),
          ...(surchargeBps
            ? [
                h('dt', {}, 'Surcharge'),
                h('dd', { id: 'quote-surcharge', 'data-testid': 'quote-surcharge', 'data-bps': surchargeBps },
                  `+${formatBps(surchargeBps)} for your constraints: `,
                  h('span', { id: 'quote-effective-price' }, formatSurcharged(price, surchargeBps, token)), ` ${text.unit}, on each amount as a whole, rounded down once`),
              ]
            : []),
          h('dt', {}, 'Locked in the escrow'),
          h('dd', {}, amount(deposit, token, 'quote-deposit')),
          h('dt', {}, 'Can come back'),
          h('dd', {}, ...refundable),
          h('dt', {}, 'Gas'),
          h('dd', {}, gasLine),
          h('dt', {}, 'From your account'),
          h('dd', { id: 'quote-account' }, ...accountLine(lock, free)),
        ),
      );
      const covered = free !== null && free >= lock;
      last = { w, deposit, needsApproval, lock, covered };
      fromAccount.hidden = !covered;
      fromAccount.disabled = busy;
      fromAccount.textContent = `From my account: sign to lock ${formatAmount(lock, token)} (no gas)`;
      approve.hidden = !needsApproval;
      approve.textContent = `Approve ${formatAmount(deposit, token)}`;
      approve.disabled = busy;
      pay.disabled = busy || needsApproval;
      pay.textContent = who ? `Pay ${formatAmount(deposit, token)}` : `Connect wallet and pay ${formatAmount(deposit, token)}`;
    } catch (err) {
      if (mine !== seq) return;
      replace(quoteBox, h('p', { class: 'alert', 'data-testid': 'quote-error' }, userMessage(err)));
    }
  }

  /** What an order from the account would lock, against the account's free balance. */
  function accountLine(lock: bigint, free: bigint | null): (HTMLElement | string)[] {
    const conference = model === 'timeLimited' || model === 'flexiblePeriod'
      ? ` (one conference of at most ${formatDuration(chain?.maxDuration ?? terms.maxDuration)}, ${model === 'timeLimited' ? 'charged per minute used' : 'the minimum plus each second used'}; the rest is freed at its settlement)`
      : ' (the rest is freed at its settlement)';
    const locks = ['an order locks ', amount(lock, token, 'quote-account-lock'), conference];
    if (free === null) return [...locks, '. ', h('a', { href: '/account' }, 'Your account'), ' could not be read.'];
    if (free >= lock) return [...locks, ' of your free ', amount(free, token, 'quote-account-free'), '.'];
    return [...locks, '; your free balance, ', amount(free, token, 'quote-account-free'), ', does not cover it: ', h('a', { href: '/account' }, 'deposit on your account'), ' to open conferences with one signature.'];
  }

  /** Where an order stands, in `#order-status` (its `data-status` for tests). */
  const orderLine = (status: string, text: string) => {
    orderStatus.hidden = false;
    orderStatus.dataset.status = status;
    orderStatus.textContent = text;
  };

  /** Signs an order for these terms in the wallet, hands it to the service and follows it until the
   *  operator opens it (the agreement's page) or gives up (its reason). */
  async function openFromAccount(): Promise<void> {
    if (busy || !last?.covered) return;
    showError(null);
    busy = true;
    fromAccount.disabled = true;
    pay.disabled = true;
    try {
      const who = account() ?? (await connect());
      const { w, lock } = last;
      // The deadline is the chain's time, which the escrow checks (not this computer's clock).
      const head = await reader.getBlock({ blockTag: 'latest' });
      const clockOffset = Number(head.timestamp) - Date.now() / 1000;
      const deadline = Number(head.timestamp) + ORDER_VALID_S;
      const nonce = await nextOrderNonce(reader, cfg, who);
      const order = { termsId: terms.id, allowedRegions: w.allowedRegions, gdpr: w.gdpr, maxCost: lock, nonce, deadline };
      const signature = await signTypedData({ domain: orderDomain(cfg), types: ORDER_TYPES, primaryType: 'Order', message: order } as unknown as Parameters<typeof signTypedData>[0]);
      await api.submitOrder({
        customer: who,
        order: { termsId: order.termsId, allowedRegions: order.allowedRegions, gdpr: order.gdpr, maxCost: lock.toString(), nonce: nonce.toString(), deadline },
        signature,
      });
      orderLine('pending', `Order signed and sent: waiting for the service to open your conference (it locks ${formatAmount(lock, token)} from your account)…`);
      for (;;) {
        if (closed) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (closed) return;
        let view;
        try {
          view = await api.order(who, nonce.toString());
        } catch (err) {
          // Just recorded: a moment's 404 is the service catching up; anything else is said.
          if (err instanceof ApiError && err.status === 404) continue;
          throw err;
        }
        if (view.status === 'opened' && view.agreementId != null) {
          localStorage.setItem(`expected:${view.agreementId}`, JSON.stringify({ expected: w.expected, quality: w.quality }));
          orderLine('opened', `Opened: agreement ${view.agreementId}.`);
          navigate(`/agreement/${view.agreementId}`);
          return;
        }
        if (view.status === 'failed') {
          orderLine('failed', 'The service did not open this order: nothing was locked.');
          throw new UserError(`The service could not open your order: ${view.reason ?? 'it gave no reason'}.`);
        }
        if (Date.now() / 1000 + clockOffset > deadline + 60) {
          orderLine('expired', 'The order’s deadline passed before the service opened it: it can no longer be opened, and nothing was locked.');
          return;
        }
      }
    } catch (err) {
      showError(userMessage(err));
    } finally {
      busy = false;
      if (!closed) await quote();
    }
  }
  fromAccount.addEventListener('click', () => void openFromAccount());

  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const requote = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void quote(), 150);
  };
  form.addEventListener('input', requote);
  form.addEventListener('change', requote);
  const unwatch = onWalletChange(requote);

  approve.addEventListener('click', async () => {
    if (!last || busy || token.address === null) return;
    showError(null);
    busy = true;
    approve.disabled = true;
    try {
      await send(`allow the escrow to take ${formatAmount(last.deposit, token)}`, { address: token.address, abi: erc20Abi, functionName: 'approve', args: [cfg.escrow, last.deposit] });
      showNotice(`Approved: the escrow may now take ${formatAmount(last.deposit, token)} when you pay.`);
    } catch (err) {
      showError(userMessage(err));
    } finally {
      busy = false;
      await quote();
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    showError(null);
    busy = true;
    pay.disabled = true;
    try {
      if (!account()) {
        await connect();
        await quote();
      }
      if (!last) throw new UserError('The quote could not be read: check the terms and try again.');
      if (last.needsApproval) throw new UserError(`Approve ${formatAmount(last.deposit, token)} for the escrow first, then pay.`);
      const { w, deposit } = last;
      const receipt = await send(`pay ${formatAmount(deposit, token)} into the escrow`, callFor(w, deposit));
      const signed = eventsOf(receipt, escrowAbi, 'AgreementSigned', cfg.escrow)[0];
      if (!signed) throw new UserError('The payment was included but the escrow recorded no agreement: check your wallet’s activity before trying again.');
      const id = signed.args.agreementId as bigint;
      // What the customer expects, to prefill the registration of participants on the agreement's page.
      localStorage.setItem(`expected:${id}`, JSON.stringify({ expected: w.expected, quality: w.quality }));
      showNotice(null);
      navigate(`/agreement/${id}`);
    } catch (err) {
      showError(userMessage(err));
      pay.disabled = false;
    } finally {
      busy = false;
    }
  });

  await quote();
  return () => {
    closed = true;
    clearTimeout(timer);
    unwatch();
  };
}

