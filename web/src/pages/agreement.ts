// One agreement (`/agreement/{id}`), followed live over server-sent events: where it stands (a step
// indicator), the join link once the conference runs, the participants the customer registers, the
// customer's actions (stop with a transaction or a gasless signature, which the customer may submit
// itself when the operator does not; start, close, for minutes and windows), who measures the availability
// and how (with a link to the evidence), and the settlement with the charge recomputed here from the
// chain's figures.
import { isAddress, zeroAddress, type Address } from 'viem';
import { api, follow, type AgreementView, type Quality, type SettledSession } from '../api';
import { CHAIN_STATUS, escrowAbi, explorerLink, publicClient, type ChainAgreement, type ChainTerms } from '../chain';
import { config, regionNames, token as tokenOf, type Config, type TokenInfo } from '../config';
import { h, replace, showError, showNotice } from '../dom';
import { UserError, userMessage } from '../errors';
import { formatAmount, formatBps, formatDuration, formatSurcharged, formatTime, shortAddress } from '../format';
import { chargeFor } from '../pricing';
import type { Page } from '../router';
import { ensureSession } from '../siwe';
import { account, ready, send, signTypedData } from '../wallet';

/** The steps the customer sees, in order; `refunded` replaces the last ones when it never started. */
const STEPS = [
  ['signed', 'Signed', 'Your payment is locked in the escrow.'],
  ['placing', 'Placing', 'The service is choosing where your conference runs.'],
  ['deploying', 'Deploying', 'Your conference room is starting.'],
  ['active', 'Active', 'Your conference is running.'],
  ['stopping', 'Stopping', 'The room is closing and the conference is being settled on-chain.'],
  ['settled', 'Settled', 'The providers were paid for what was used; the rest came back to you.'],
] as const;

/** The step (index into STEPS) each service status stands at. */
const STEP_OF: Record<string, number> = {
  idle: 0,
  signed: 1,
  deploying: 2,
  activating: 2,
  active: 3,
  undeploying: 4,
  settling: 4,
  settled: 5,
  refunded: 5,
};

const STATUS_TEXT: Record<string, string> = {
  signed: 'Paid: the service is placing your conference.',
  deploying: 'Starting your conference room.',
  activating: 'The room answers; the service is countersigning on-chain.',
  active: 'Your conference is running.',
  undeploying: 'Stopping: the conference room is closing.',
  settling: 'Settling on-chain: the charge for what was used, the refund for the rest.',
  settled: 'Done: the providers were paid for what was used and the rest came back to you.',
  refunded: 'The conference never started: your whole deposit came back.',
};

/** How long the service may take to submit a gasless stop, in seconds. */
const STOP_SIGNATURE_VALID_S = 600;

/** How long the page waits for the operator to act on a recorded signed stop before it offers the
 *  customer to submit the signature on-chain itself (`stopBySignature`, which anyone may call). */
const SELF_SUBMIT_AFTER_MS = 30_000;

/** A Stop the customer signed and the service recorded, kept in this browser (so a reload keeps it)
 *  until the agreement moves on: the customer's way out if the operator sits on it. */
interface HeldStop {
  /** The chain's session number it names (1 + the sessions settled before it). */
  session: number;
  stoppedAt: number;
  deadline: number;
  signature: `0x${string}`;
  /** When the service recorded it, in this computer's milliseconds. */
  recordedAt: number;
}
const heldStopKey = (id: number) => `signed-stop:${id}`;

/** What the page reads from the escrow itself, to check the service's figures. */
interface ChainFacts {
  agreement: ChainAgreement;
  deposit: bigint;
  minimumCharge: bigint;
  window: { from: number; to: number } | null;
  minutes: { deposit: bigint; charged: bigint; sessions: number } | null;
  /** The session a Stop signed now would name: 1 + the sessions settled (only TimeLimited counts them). */
  session: number;
  /** The terms' monitor as the escrow names it (the zero address: the operator measures). */
  monitor: Address;
  /** How long after a conference's end it may be settled before anyone may settle it overdue (seconds). */
  settlementWindow: number;
  settled: { availabilityBps: number; evidence: string; charge: bigint; refund: bigint; tx: string }[];
  closed: { refund: bigint; tx: string } | null;
  /** The order's nonce when the agreement was opened from its customer's account (`OrderFilled`): its
   *  refund then goes back to the account's free balance. */
  orderNonce: bigint | null;
  /** When the last conference ended, from its `AgreementEnded` event: a conference stopped and settled in
   *  one call (`stopAndSettle`) keeps its end only there (`agreementOf(id).endedAt` stays 0). */
  endedAt: number | null;
  head: number;
}

const page: Page = async (root, [idText]) => {
  const id = Number(idText);
  const cfg = await config();
  const reader = publicClient(cfg);

  /** A notice about an action the customer just took, cleared once the agreement is over. */
  let actionNotice: string | null = null;
  const noticeAction = (text: string) => showNotice((actionNotice = text));
  const status = h('p', { id: 'status', class: 'status-line', 'data-status': '', 'data-testid': 'status', 'aria-live': 'polite' }, 'Connecting to the service…');
  const steps = h('ol', { class: 'stepper', id: 'steps', 'aria-label': 'Progress', 'data-testid': 'steps' });
  const live = h('section', { id: 'live', class: 'live', hidden: true, 'aria-labelledby': 'live-title' });
  const facts = h('dl', { class: 'facts', id: 'agreement-facts' });
  const actions = h('div', { class: 'row', id: 'agreement-actions' });
  const measuredBy = h('section', { id: 'measured-by-box', class: 'card', 'aria-labelledby': 'measured-by-title' });
  const settlement = h('section', { id: 'settlement', class: 'settlement', hidden: true, 'data-testid': 'settlement', 'aria-labelledby': 'settlement-title' });
  const transactions = h('section', { id: 'transactions-box', hidden: true }, h('h2', {}, 'Transactions'), h('ul', { class: 'tx-list', id: 'transactions' }));
  const participants = h('section', { id: 'participants-box', class: 'card', 'aria-labelledby': 'participants-title' });

  replace(
    root,
    h('h1', { id: 'agreement-title', tabindex: -1 }, `Agreement ${id}`),
    status,
    steps,
    live,
    actions,
    h('section', { class: 'card', 'aria-label': 'Terms' }, facts),
    participants,
    measuredBy,
    settlement,
    transactions,
  );

  let view: AgreementView | null = null;
  let chain: ChainFacts | null = null;
  let busy = false;
  let readSeq = 0;
  /** The chain's clock minus this computer's, from the newest block read. */
  let clockOffset = 0;
  const chainNow = () => Math.floor(Date.now() / 1000 + clockOffset);

  async function readChain(): Promise<void> {
    const mine = ++readSeq;
    try {
      const [agreement, deposit, block] = await Promise.all([
        reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'agreementOf', args: [BigInt(id)] }) as Promise<ChainAgreement>,
        reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'depositOf', args: [BigInt(id)] }) as Promise<bigint>,
        reader.getBlock({ blockTag: 'latest' }),
      ]);
      const model = view?.model;
      const [terms, settlementWindow, win, minutes, settledLogs, closedLogs, filledLogs, endedLogs] = await Promise.all([
        reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'termsOf', args: [agreement.termsId] }) as Promise<ChainTerms>,
        reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'SETTLEMENT_WINDOW' }) as Promise<bigint | number>,
        model === 'flexiblePeriod' ? (reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'windowOf', args: [BigInt(id)] }) as Promise<{ from: number; to: number; minimumCharge: bigint }>) : null,
        model === 'timeLimited' ? (reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'minutesAccountOf', args: [BigInt(id)] }) as Promise<{ deposit: bigint; charged: bigint; sessions: number }>) : null,
        reader.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock ?? 0) }),
        model === 'timeLimited' ? reader.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementClosed', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock ?? 0) }) : [],
        reader.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'OrderFilled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock ?? 0) }),
        reader.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementEnded', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock ?? 0) }),
      ]);
      if (mine !== readSeq) return;
      clockOffset = Number(block.timestamp) - Date.now() / 1000;
      const args = (log: unknown) => (log as { args: Record<string, unknown>; transactionHash: string });
      chain = {
        agreement,
        deposit,
        minimumCharge: win?.minimumCharge ?? 0n,
        window: win ? { from: Number(win.from), to: Number(win.to) } : null,
        minutes,
        session: Number(minutes?.sessions ?? 0) + 1,
        monitor: terms.monitor,
        settlementWindow: Number(settlementWindow),
        settled: settledLogs.map((log) => ({ availabilityBps: Number(args(log).args.availabilityBps), evidence: String(args(log).args.evidence), charge: args(log).args.charge as bigint, refund: args(log).args.refund as bigint, tx: args(log).transactionHash })),
        closed: closedLogs[0] ? { refund: args(closedLogs[0]).args.refund as bigint, tx: args(closedLogs[0]).transactionHash } : null,
        orderNonce: filledLogs[0] ? (args(filledLogs[0]).args.nonce as bigint) : null,
        endedAt: endedLogs.length ? Number(args(endedLogs[endedLogs.length - 1]).args.endedAt as bigint) : null,
        head: Number(block.timestamp),
      };
      render();
    } catch (err) {
      if (mine === readSeq) showNotice(`The chain could not be read (${userMessage(err)}): the figures shown are the service’s.`);
    }
  }

  function render(): void {
    if (!view) return;
    const v = view;
    const token = tokenOf(cfg, v.tokenId);
    renderStatus(v);
    renderLive(v, token);
    renderFacts(v, token);
    renderActions(v);
    renderMeasuredBy(v);
    renderSettlement(v, token);
    renderTransactions(v);
    // Who may join matters until the agreement is over; so does the notice of the last action.
    const over = v.status === 'settled' || v.status === 'refunded';
    participants.hidden = over;
    if (over) localStorage.removeItem(heldStopKey(id));
    if (over && actionNotice && document.getElementById('notice')?.textContent === actionNotice) {
      actionNotice = null;
      showNotice(null);
    }
  }

  function renderStatus(v: AgreementView): void {
    status.dataset.status = v.status;
    const idleText =
      v.model === 'timeLimited'
        ? v.sessions.length
          ? 'Between sessions: start another one, or close the account to get the unused minutes back.'
          : 'Paid: start a session whenever you like.'
        : 'Reserved: start the conference inside your window.';
    replace(status, h('span', { class: 'badge', 'data-status': v.status }, v.status), ' ', v.status === 'idle' ? idleText : (STATUS_TEXT[v.status] ?? v.status));
    const at = STEP_OF[v.status] ?? 0;
    const refunded = v.status === 'refunded';
    const items = STEPS.map(([key, name, text], i) => {
      if (refunded && i >= 1) return null;
      const done = i < at || (i === at && (v.status === 'settled' || (v.status === 'idle' && i === 0)));
      const current = i === at && !refunded;
      return h('li', { class: done ? 'done' : current ? 'current' : '', 'data-step': key, 'aria-current': current ? 'step' : null }, h('span', { class: 'step-name' }, name), ' ', h('span', { class: 'hint' }, text));
    });
    if (refunded) items.push(h('li', { class: 'done current', 'data-step': 'refunded', 'aria-current': 'step' }, h('span', { class: 'step-name' }, 'Refunded'), ' ', h('span', { class: 'hint' }, STATUS_TEXT.refunded)));
    replace(steps, ...items);
  }

  function renderLive(v: AgreementView, token: TokenInfo): void {
    const active = v.status === 'active';
    live.hidden = !active;
    if (!active) {
      live.replaceChildren();
      return;
    }
    const link = `${location.origin}/join/${id}`;
    if (!live.querySelector('#join-link')) {
      replace(
        live,
        h('h2', { id: 'live-title' }, 'Your conference is running'),
        h('p', {}, 'Share this link with the participants you register below; each signs in with their wallet to get in:'),
        h('p', {}, h('a', { id: 'join-link', 'data-testid': 'join-link', class: 'join-link', href: link }, link), ' ', h('button', { type: 'button', id: 'copy-link', class: 'secondary', onclick: () => void navigator.clipboard?.writeText(link).then(() => showNotice('The join link is copied.')) }, 'Copy')),
        h('p', {}, h('a', { id: 'join-now', 'data-testid': 'join-now', class: 'button', href: `/join/${id}` }, 'Join now')),
        h('dl', { class: 'facts' }, h('dt', {}, 'Started'), h('dd', { id: 'started-at' }), h('dt', {}, 'Running for'), h('dd', { id: 'running-for' }), h('dt', {}, 'Cost so far'), h('dd', { id: 'cost-so-far' }), h('dt', {}, 'Stops by itself at'), h('dd', { id: 'expires-at' })),
      );
    }
    tick(v, token);
  }

  function tick(v: AgreementView, token: TokenInfo): void {
    if (v.status !== 'active' || v.startedAt == null) return;
    const elapsed = Math.max(0, Math.min(chainNow(), v.endsAt ?? Infinity) - v.startedAt);
    const cost = chargeFor(v.model, BigInt(v.price), v.surchargeBps, BigInt(elapsed), chain?.minimumCharge ?? 0n, 10000);
    live.querySelector('#started-at')!.textContent = formatTime(v.startedAt);
    live.querySelector('#running-for')!.textContent = formatDuration(elapsed);
    live.querySelector('#cost-so-far')!.textContent = formatAmount(cost, token);
    live.querySelector('#expires-at')!.textContent = v.endsAt ? formatTime(v.endsAt) : '—';
  }

  function renderFacts(v: AgreementView, token: TokenInfo): void {
    const unit = v.model === 'fixedPrice' ? 'per conference' : v.model === 'timeLimited' ? 'per minute' : 'per second';
    const rows: [string, Node | string][] = [
      ['Model', v.model],
      ['Terms', String(v.termsId)],
      ['Customer', h('span', { class: 'mono', title: v.customer }, shortAddress(v.customer))],
      ['Price', h('span', { id: 'price', 'data-units': v.price, 'data-surcharge-bps': v.surchargeBps }, formatAmount(BigInt(v.price), token), ` ${unit}`,
        v.surchargeBps ? ` + ${formatBps(v.surchargeBps)} for your constraints: ${formatSurcharged(BigInt(v.price), v.surchargeBps, token)} ${unit}` : '')],
      ['Locked', h('span', { id: 'deposit', 'data-units': v.deposit }, formatAmount(BigInt(v.deposit), token),
        chain?.orderNonce != null ? h('span', { id: 'from-account', 'data-nonce': chain.orderNonce.toString() }, ' from ', h('a', { href: '/account' }, 'your account'), ' by a signed order (the longest conference’s deposit)') : '')],
      ['May run in', regionNames(cfg, v.allowedRegions).join(', ') || '—'],
      ['GDPR', v.gdpr ? 'required' : 'not required'],
      ['Signed', formatTime(v.signedAt)],
    ];
    if (v.model === 'timeLimited' && chain) {
      const left = chain.agreement.duration;
      rows.push(['Minutes left', h('span', { id: 'minutes-left', 'data-seconds': left, 'data-testid': 'minutes-left' }, formatDuration(left))]);
    }
    if (v.model === 'flexiblePeriod' && (chain?.window || v.windowFrom != null)) {
      const from = chain?.window?.from ?? v.windowFrom!;
      const to = chain?.window?.to ?? v.windowTo!;
      rows.push(['Window', h('span', { id: 'window', 'data-from': from, 'data-to': to }, `${formatTime(from)} – ${formatTime(to)}`)]);
    }
    if (v.region != null) rows.push(['Ran in', cfg.regions[v.region] ?? `region ${v.region}`]);
    replace(facts, ...rows.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
  }

  function button(idName: string, label: string, onclick: () => void, cls = ''): HTMLButtonElement {
    return h('button', { type: 'button', id: idName, 'data-testid': idName, class: cls, disabled: busy, onclick }, label);
  }

  function renderActions(v: AgreementView): void {
    const focused = document.activeElement?.id;
    const list: HTMLElement[] = [];
    const chainStatus = chain ? CHAIN_STATUS[chain.agreement.status] : v.chainStatus;
    if (chainStatus === 'idle') {
      if (v.model === 'timeLimited') {
        const left = chain?.agreement.duration ?? 0;
        if (left > 0) list.push(button('start', 'Start a session', () => void act('start a session', 'start')));
        list.push(button('close', 'Close the account: unused minutes back', () => void act('close the account and get the unused minutes back', 'close'), 'secondary'));
      } else if (v.model === 'flexiblePeriod' && chain?.window) {
        const now = chainNow();
        const inside = now >= chain.window.from && now < chain.window.to;
        const start = button('start', inside ? 'Start the conference' : now < chain.window.from ? `Opens ${formatTime(chain.window.from)}` : 'The window is over', () => void act('start the conference', 'start'));
        if (!inside) start.disabled = true;
        list.push(start);
      }
    }
    if (chainStatus === 'requested' || chainStatus === 'active') {
      list.push(button('stop', chainStatus === 'requested' ? 'Call the start off' : 'Stop the conference', () => void act(chainStatus === 'requested' ? 'call the start off' : 'stop the conference', 'stop'), 'danger'));
      const held = heldStop();
      if (v.status === 'active' && !held) list.push(button('stop-signed', 'Stop without gas (sign)', () => void signStop()));
      if (chainStatus === 'active' && held && selfSubmitDue(held)) {
        list.push(button('stop-onchain', 'The service has not stopped it: submit your signed stop yourself (gas)', () => void act('submit your signed stop', 'stopBySignature', [BigInt(id), held.stoppedAt, held.deadline, held.signature]), 'secondary'));
      }
    }
    // Nobody settled the ended conference within the settlement window: anyone may now, by the contract's
    // rule (no report from the terms' monitor: nothing available, everything back; no monitor: full).
    if (chainStatus === 'ended' && chain && chainNow() > chain.agreement.endedAt + chain.settlementWindow) {
      const monitored = chain.monitor.toLowerCase() !== zeroAddress;
      const label = monitored
        ? 'No report from the monitor in time: settle now, everything back to you (gas)'
        : 'Not settled in time: settle now at full availability (gas)';
      list.push(button('settle-overdue', label, () => void act('settle the overdue conference', 'settleOverdue'), 'secondary'));
    }
    if (v.status === 'settled' || v.status === 'refunded') list.push(h('a', { class: 'button secondary', href: '/', id: 'new-agreement' }, 'Book another conference'));
    replace(actions, ...list);
    if (focused) (document.getElementById(focused) ?? document.getElementById('agreement-title'))?.focus();
  }

  const DONE = {
    start: 'Started: the service is placing your conference.',
    stop: 'Stopped: the service closes the room and settles; this page follows it.',
    stopBySignature: 'Stopped on-chain at the time you signed: the service closes the room and settles; this page follows it.',
    close: 'Closed: the unused minutes’ money is on its way back.',
    settleOverdue: 'Settled: the conference was not settled in time, so the contract’s rule decided it.',
  } as const;

  async function act(what: string, functionName: keyof typeof DONE, args: unknown[] = [BigInt(id)]): Promise<void> {
    if (busy) return;
    busy = true;
    showError(null);
    if (view) renderActions(view);
    try {
      await send(what, { address: cfg.escrow, abi: escrowAbi, functionName, args });
      noticeAction(DONE[functionName]);
    } catch (err) {
      showError(userMessage(err));
    } finally {
      busy = false;
      await readChain();
    }
  }

  /** The signed stop this browser holds for the running conference, if its deadline has not passed. */
  function heldStop(): HeldStop | null {
    const held = JSON.parse(localStorage.getItem(heldStopKey(id)) ?? 'null') as HeldStop | null;
    if (!held || !chain || held.session !== chain.session || chainNow() > held.deadline) return null;
    return held;
  }

  /** Whether the operator had its time to act on the held stop. */
  const selfSubmitDue = (held: HeldStop) => Date.now() >= held.recordedAt + SELF_SUBMIT_AFTER_MS;

  /** Stops without a transaction: the customer signs an EIP-712 `Stop` naming the chain's session; the
   *  service submits it with the settlement (and the customer may submit it itself, see renderActions). */
  async function signStop(): Promise<void> {
    const v = view;
    if (busy || !v || v.status !== 'active' || v.startedAt == null) return;
    busy = true;
    showError(null);
    renderActions(v);
    try {
      const [block, minutes] = await Promise.all([
        reader.getBlock({ blockTag: 'latest' }),
        reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'minutesAccountOf', args: [BigInt(id)] }) as Promise<{ sessions: number }>,
      ]);
      const session = Number(minutes.sessions) + 1;
      const stoppedAt = Math.max(v.startedAt, Number(block.timestamp));
      const deadline = stoppedAt + STOP_SIGNATURE_VALID_S;
      const signature = await signTypedData({
        domain: { name: 'ConferenceEscrow', version: '1', chainId: cfg.chainId, verifyingContract: cfg.escrow },
        types: { Stop: [{ name: 'agreementId', type: 'uint256' }, { name: 'session', type: 'uint32' }, { name: 'stoppedAt', type: 'uint40' }, { name: 'deadline', type: 'uint40' }] },
        primaryType: 'Stop',
        message: { agreementId: BigInt(id), session, stoppedAt, deadline },
      } as unknown as Parameters<typeof signTypedData>[0]);
      await api.stop(id, { stoppedAt, deadline, signature });
      const held: HeldStop = { session, stoppedAt, deadline, signature, recordedAt: Date.now() };
      localStorage.setItem(heldStopKey(id), JSON.stringify(held));
      noticeAction('Stopped: the service closes the room and submits your signed stop with the settlement.');
    } catch (err) {
      showError(userMessage(err));
    } finally {
      busy = false;
      if (view) renderActions(view);
    }
  }

  /** Who measures the availability that settles the conference (the escrow's terms name the monitor; the
   *  service's record stands in until the chain is read), how the figure is computed, and where its
   *  evidence is: the audit page recomputes each settlement's commitment from the records. */
  function renderMeasuredBy(v: AgreementView): void {
    const monitor = chain ? (chain.monitor.toLowerCase() === zeroAddress ? null : chain.monitor) : v.monitor ?? null;
    const window = chain ? formatDuration(chain.settlementWindow) : 'the settlement window';
    const interval = monitor ? 'the monitor’s probe interval' : `the probe interval (${cfg.probeIntervalMs / 1000} s)`;
    replace(
      measuredBy,
      h('h2', { id: 'measured-by-title' }, 'Availability'),
      h('p', { id: 'measured-by', 'data-monitor': monitor ?? '' },
        ...(monitor
          ? ['Measured by the offer’s independent monitor, ', h('span', { class: 'mono', 'data-address': monitor }, monitor), ': a provider of its own, with its own key. Only its signed report settles your conference, whoever submits it.']
          : ['Measured by the operator: this offer names no independent monitor, so the service that runs your conference probes it and reports the figure.'])),
      h('p', { id: 'availability-how' },
        `How the figure is computed: the conference’s running time is cut into slots of ${interval}; a slot counts when it holds a successful probe, and a slot without one, probe failed or missing, counts as down. Below 75% you pay nothing and everything comes back to you. `,
        monitor
          ? `If no report of the monitor settles it within ${window} of its end, it settles at 0% and everything comes back to you.`
          : `If the operator does not settle it within ${window} of its end, anyone may settle it, at full availability.`),
      chain?.settled.length
        ? h('ul', { id: 'evidence-list', class: 'plain', 'aria-label': 'Evidence committed on-chain' }, ...chain.settled.map((s, i) =>
          h('li', { 'data-session': i + 1, 'data-evidence': s.evidence },
            `Conference ${i + 1}: ${formatBps(s.availabilityBps)}, `,
            ...(/^0x0+$/.test(s.evidence) ? ['settled overdue, with no evidence.'] : ['commitment to its probe records ', h('code', { title: s.evidence }, shortAddress(s.evidence)), '.']))))
        : null,
      h('p', {}, 'The evidence: ', h('a', { id: 'evidence-link', href: `/audit#agreement-${id}` }, 'each settlement’s commitment and figure recomputed from the probe records'),
        ' on the audit page, or ', h('a', { id: 'evidence-json', href: `/api/agreements/${id}/probes` }, 'the records themselves (JSON)'), '.'),
    );
  }

  function renderSettlement(v: AgreementView, token: TokenInfo): void {
    const sessions = v.sessions;
    const show = v.status === 'settled' || v.status === 'refunded' || sessions.length > 0;
    settlement.hidden = !show;
    if (!show) return;
    const used = sessions.reduce((sum, s) => sum + (s.endedAt != null && s.startedAt != null ? s.endedAt - s.startedAt : 0), 0);
    const charged = BigInt(v.charged);
    const refund = v.status === 'settled' || v.status === 'refunded' ? BigInt(v.refund ?? chain?.closed?.refund.toString() ?? '0') : null;
    const rows: (Node | null)[] = [
      h('dt', {}, 'Time used'),
      h('dd', { id: 'used-seconds', 'data-seconds': used }, formatDuration(used)),
      h('dt', {}, 'Availability'),
      h('dd', { id: 'availability', 'data-bps': v.availabilityBps ?? '' }, v.availabilityBps == null ? '—' : formatBps(v.availabilityBps)),
      h('dt', {}, 'Charged'),
      h('dd', {}, h('span', { id: 'charge', 'data-testid': 'charge', 'data-wei': charged.toString(), 'data-units': charged.toString() }, formatAmount(charged, token))),
      h('dt', {}, 'Refunded to you'),
      h('dd', {}, refund === null ? h('span', { id: 'refund', 'data-wei': '' }, v.model === 'timeLimited' ? 'when you close the account' : '—') : h('span', { id: 'refund', 'data-testid': 'refund', 'data-wei': refund.toString(), 'data-units': refund.toString() }, formatAmount(refund, token),
        chain?.orderNonce != null
          ? h('span', { id: 'refund-to-account' }, ' (back in ', h('a', { href: '/account' }, 'your account'), '’s free balance)')
          : v.refundDeferred ? ' (credited: withdraw it from the escrow)' : '')),
    ];
    replace(
      settlement,
      h('h2', { id: 'settlement-title' }, 'Settlement'),
      v.availabilityBps != null && v.availabilityBps < 7500 ? h('p', {}, 'The conference was available less than 75% of the time, so nothing was charged.') : null,
      h('dl', { class: 'facts' }, ...rows),
      check(v, token, sessions),
    );
  }

  /** The charge recomputed from the chain's figures with the contracts' formula, beside the escrow's. */
  function check(v: AgreementView, token: TokenInfo, sessions: SettledSession[]): HTMLElement | null {
    if (!chain || chain.settled.length === 0) return null;
    const price = chain.agreement.price;
    const surcharge = chain.agreement.surchargeBps;
    const figures: { used: bigint; bps: number; charge: bigint }[] = [];
    if (v.model === 'timeLimited') {
      chain.settled.forEach((s, i) => {
        const record = sessions[i];
        const used = record && record.endedAt != null && record.startedAt != null ? BigInt(record.endedAt - record.startedAt) : 0n;
        figures.push({ used, bps: s.availabilityBps, charge: s.charge });
      });
    } else {
      const s = chain.settled[0];
      const endedAt = chain.agreement.endedAt || (chain.endedAt ?? 0);
      figures.push({ used: BigInt(Math.max(0, endedAt - chain.agreement.startedAt)), bps: s.availabilityBps, charge: s.charge });
    }
    const computed = figures.map((f) => chargeFor(v.model, price, surcharge, f.used, chain!.minimumCharge, f.bps));
    const total = computed.reduce((a, b) => a + b, 0n);
    const onChain = figures.reduce((a, f) => a + f.charge, 0n);
    const ok = total === onChain;
    // The surcharge applies to each amount as a whole, rounded down once (k = 1 + the surcharge).
    const k = surcharge ? ` × ${(10_000 + surcharge) / 10_000}` : '';
    const formula =
      v.model === 'fixedPrice'
        ? `the price${k ? ` ${formatAmount(price, token)}${k}, rounded down` : ''}`
        : v.model === 'dynamicPrice'
          ? `⌊price × seconds used${k}⌋ = ⌊${formatAmount(price, token)} × ${figures[0].used}${k}⌋`
          : v.model === 'timeLimited'
            ? `⌊price per minute × seconds used${k} ÷ 60⌋ per session, ${figures.map((f) => f.used).join(' + ')} s`
            : `minimum charge + ⌊price × seconds used${k}⌋ = ${formatAmount(chain.minimumCharge, token)} + ⌊${formatAmount(price, token)} × ${figures[0].used}${k}⌋`;
    return h(
      'p',
      { id: 'charge-check', 'data-testid': 'charge-check', 'data-ok': String(ok), 'data-computed': total.toString(), class: ok ? 'ok' : 'alert' },
      `Checked on this page from the chain: ${formula} = ${formatAmount(total, token)}${figures.some((f) => f.bps < 7500) ? ' (nothing below 75% availability)' : ''}. `,
      ok ? 'It matches what the escrow charged.' : `It differs from what the escrow charged (${formatAmount(onChain, token)}).`,
    );
  }

  function renderTransactions(v: AgreementView): void {
    const list = transactions.querySelector('#transactions')!;
    const items: [string, string][] = [];
    for (const step of ['sign', 'activate', 'stop', 'settle'] as const) if (v.transactions[step]) items.push([step, v.transactions[step]!]);
    for (const s of v.sessions) if (s.settleTx && !items.some(([, hash]) => hash === s.settleTx)) items.push([`settle (session ${s.session})`, s.settleTx]);
    if (chain?.closed) items.push(['close', chain.closed.tx]);
    transactions.hidden = items.length === 0;
    replace(
      list,
      ...items.map(([step, hash]) => {
        const href = explorerLink(cfg, 'tx', hash);
        return h('li', { 'data-testid': `tx-${step.split(' ')[0]}` }, h('span', { class: 'step-name' }, step), ' ', href ? h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, hash) : h('code', {}, hash));
      }),
    );
  }

  participantsForm(cfg, id, participants, () => view);

  let lastKey = '';
  const stopFollowing = follow(
    id,
    (next) => {
      view = next;
      if (next.chainTime) clockOffset = next.chainTime - Date.now() / 1000;
      render();
      // Read the chain again when the agreement moved, not on every repeat of the same state.
      const key = `${next.status}/${next.chainStatus}/${next.sessions.length}/${next.session}`;
      if (key !== lastKey) {
        lastKey = key;
        void readChain();
      }
    },
    () => replace(status, 'Waiting for the service to see your agreement on-chain…'),
  );
  let selfSubmitShown = false;
  const ticker = setInterval(() => {
    if (view?.status === 'active') tick(view, tokenOf(cfg, view.tokenId));
    // The offer to submit a held stop appears once the operator had its time, and goes with the deadline.
    const held = heldStop();
    const due = !!held && selfSubmitDue(held);
    if (view && due !== selfSubmitShown) {
      selfSubmitShown = due;
      renderActions(view);
    }
  }, 1000);
  return () => {
    stopFollowing();
    clearInterval(ticker);
  };
};
export default page;

/** The customer registers who may join (addresses and their regions) and the quality, after signing in. */
function participantsForm(cfg: Config, id: number, slot: HTMLElement, currentView: () => AgreementView | null): void {
  const saved = JSON.parse(localStorage.getItem(`expected:${id}`) ?? 'null') as { expected: { region: number; count: number }[]; quality: string } | null;
  const rows = h('div', { id: 'participant-rows' });
  const regionSelect = (region: number) => h('select', { name: 'region', 'aria-label': 'Region' }, ...cfg.regions.map((name, bit) => h('option', { value: bit, selected: bit === region }, name)));
  let counter = 0;
  const addRow = (region = 0, focus = false) => {
    const n = ++counter;
    const input = h('input', { type: 'text', name: 'address', id: `participant-${n}`, placeholder: '0x…', autocomplete: 'off', spellcheck: 'false', class: 'mono' });
    const row = h(
      'div',
      { class: 'participant-row row', 'data-testid': 'participant-row' },
      h('label', { for: `participant-${n}` }, `Participant ${n}`),
      input,
      regionSelect(region),
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove participant ${n}`, onclick: () => row.remove() }, 'Remove'),
    );
    rows.append(row);
    if (focus) input.focus();
  };
  const expected = saved?.expected.flatMap((e) => Array.from({ length: Math.min(e.count, 50) }, () => e.region)) ?? [];
  if (expected.length === 0) expected.push(0);
  for (const region of expected) addRow(region);
  const quality = h('select', { id: 'participants-quality', name: 'quality' }, ...[['sd', 'Standard (SD)'], ['hd', 'High (HD)'], ['fullhd', 'Full HD']].map(([v, label]) => h('option', { value: v, selected: v === (saved?.quality ?? 'hd') }, label)));
  const result = h('p', { id: 'participants-result', 'data-testid': 'participants-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'participant-form', novalidate: true },
    h('h2', { id: 'participants-title' }, 'Participants'),
    h('p', { class: 'hint' }, 'Only the addresses you register here (and you) can join. Registering replaces the list; you sign in with your wallet first (a signature, no gas).'),
    rows,
    h('p', {}, h('button', { type: 'button', id: 'add-participant', class: 'secondary', onclick: () => addRow(0, true) }, 'Add a participant')),
    h('p', {}, h('label', { for: 'participants-quality' }, 'Quality'), quality),
    h('p', {}, h('button', { type: 'submit', id: 'register', 'data-testid': 'register' }, 'Sign in and register')),
    result,
  );
  replace(slot, form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(null);
    const submit = form.querySelector<HTMLButtonElement>('#register')!;
    submit.disabled = true;
    try {
      const list = [...rows.querySelectorAll('.participant-row')].flatMap((row) => {
        const address = row.querySelector<HTMLInputElement>('input[name=address]')!.value.trim();
        const region = Number(row.querySelector<HTMLSelectElement>('select[name=region]')!.value);
        if (!address) return [];
        if (!isAddress(address)) throw new UserError(`“${address}” is not an Ethereum address (0x and 40 hexadecimal digits).`);
        return [{ address, region }];
      });
      if (list.length === 0) throw new UserError('Enter at least one participant’s address.');
      const v = currentView();
      const me: Address = account() ?? (await ready()).account;
      if (v && v.customer.toLowerCase() !== me.toLowerCase()) {
        throw new UserError(`Only the customer who signed this agreement (${v.customer}) can register participants: switch to that account in your wallet.`);
      }
      await ensureSession(me);
      const answer = await api.registerParticipants(id, list, quality.value as Quality);
      replace(result, `Registered ${answer.count} participant${answer.count === 1 ? '' : 's'} in ${answer.quality} at ${formatTime(answer.issuedAt)}.`);
      result.dataset.count = String(answer.count);
    } catch (err) {
      showError(userMessage(err));
    } finally {
      submit.disabled = false;
    }
  });
}
