// The audit page (`/audit`): no wallet, no trust. The contracts and how to verify their sources; every
// agreement read from the escrow's events with each charge and refund recomputed from the formulas
// (ledger.ts) and compared with both the events' figures and the service's (`GET /api/agreements`);
// the availability evidence behind each settlement, recomputed from the records the service serves and
// checked against the commitment and the figure each settlement emitted; the whole table as CSV in base units.
// Then the customer accounts (deposits − withdrawals − charges − locks = free, against `accountOf`) and
// every call a batch skipped, with the error it failed with.
import { decodeFunctionData, type Hex } from 'viem';
import { api, type AgreementSummary, type ProbesView } from '../api';
import { decodeRevert } from '../annex';
import { escrowAbi, explorerLink, publicClient, type Reader } from '../chain';
import { config, regionNames, token, type Config, type ContractInfo } from '../config';
import { h, replace, scrollBox, showNotice } from '../dom';
import { contractErrorText, userMessage } from '../errors';
import { formatAmount, formatBps, formatDuration, formatTime, shortAddress } from '../format';
import { evidenceSelfCheck } from '../evidence';
import { checkEvidence, readLedger, serviceMismatches, toCsv, usedSeconds, type BatchFailure, type EvidenceCheck, type Ledger, type LedgerAccount, type LedgerAgreement, type Mismatch } from '../ledger';
import { selfCheck } from '../pricing';
import type { Page } from '../router';

/** The audit table's columns. */
const COLUMNS = ['Agreement', 'Offer', 'Status', 'Check', 'Deposit', 'Used', 'Availability', 'Charged', 'Refund', 'Evidence'];

/** The columns of an agreement's conferences (its evidence) and of the service's probes. */
const SETTLEMENT_COLUMNS = ['#', 'Started', 'Ended', 'Region', 'Availability reported', 'Charge (event)', 'Charge (recomputed)', 'Transaction'];
const PROBE_COLUMNS = ['Conference', 'Probes', 'OK', 'Availability measured', 'Failures'];
/** The columns of each settled conference's evidence check. */
const EVIDENCE_COLUMNS = ['#', 'Measured by', 'Period', 'Slots OK / due', 'Availability (event)', 'Availability (records)', 'Commitment (event)', 'Commitment (records)', 'Check'];
const REPORT_COLUMNS = ['Conference', 'Period', 'Probe interval', 'Records', 'Availability', 'Commitment'];

/** The evidence behind an agreement's settlements as this page checked it: the service's records and
 *  the checks, `pending` while they are being read, or why they could not be. */
type Evidence = { view: ProbesView; checks: EvidenceCheck[] } | 'pending' | { error: string };

/** How many agreements' records the page reads at once. */
const EVIDENCE_READS = 4;

// The tables fit a 1280 px window and become one card per row below 760 px (style.css, `table.cards`); in
// between, or with unusually long figures, a table can still be wider than its box: `scrollBox` (dom.ts).

/** The most agreements the service lists in one answer (the API's maximum). */
const PAGE = 1000;

/** Every agreement the service knows, newest first, following `before` through its pages. */
async function allServiceAgreements(): Promise<AgreementSummary[]> {
  const all: AgreementSummary[] = [];
  for (;;) {
    const page = await api.agreements({ limit: PAGE, before: all.length ? all[all.length - 1].id : undefined });
    all.push(...page);
    if (page.length < PAGE) return all;
  }
}

/** The command that checks a contract's sources when there is no link to follow. */
function verifyCommand(cfg: Config, c: ContractInfo): string {
  const version = c.compiler.startsWith('v') ? c.compiler : `v${c.compiler}`;
  return [
    'forge verify-contract', c.address, `src/${c.name}.sol:${c.name}`,
    '--root contracts', `--chain ${cfg.chainId}`, `--compiler-version ${version}`,
    c.optimizer.enabled ? `--optimizer-runs ${c.optimizer.runs}` : '', `--evm-version ${c.evmVersion}`,
    `--guess-constructor-args --rpc-url ${cfg.rpcUrl ?? '<your node of this chain>'}`,
  ].filter(Boolean).join(' ');
}

function contractsSection(cfg: Config): HTMLElement {
  const rows = cfg.contracts.map((c) => {
    const explorer = explorerLink(cfg, 'address', c.address);
    const verify = c.sourceUrl
      ? h('a', { href: c.sourceUrl, target: '_blank', rel: 'noopener', class: 'verify' }, 'Verified sources')
      : explorer
        ? h('a', { href: explorer, target: '_blank', rel: 'noopener', class: 'verify' }, 'On the explorer')
        : h('code', { class: 'verify mono' }, verifyCommand(cfg, c));
    return h('tr', { 'data-contract': c.name },
      h('th', { scope: 'row' }, c.name),
      h('td', { class: 'mono address', 'data-label': 'Address', 'data-address': c.address }, c.address),
      h('td', { 'data-label': 'Chain' }, cfg.chainId),
      // A line may break after the version's `+`, never inside the commit.
      h('td', { class: 'mono compiler', 'data-label': 'Compiler' }, ...c.compiler.split('+').flatMap((part, i) => (i ? ['+', h('wbr'), part] : [part]))),
      h('td', { 'data-label': 'Optimizer' }, c.optimizer.enabled ? `on, ${c.optimizer.runs} runs` : 'off'),
      h('td', { 'data-label': 'EVM' }, c.evmVersion),
      h('td', { class: 'verify-cell', 'data-label': 'Verify' }, verify));
  });
  return h('section', { class: 'card wide', id: 'contracts', 'aria-labelledby': 'contracts-title' },
    h('h2', { id: 'contracts-title' }, 'Contracts'),
    h('p', { class: 'hint' }, 'The code that holds the money. Check it is the code in the repository: follow the link, or run the command from a checkout (',
      h('code', {}, 'contracts/script/verify-local.sh'), ' does the same offline).'),
    scrollBox('Contracts',
      h('table', { class: 'cards' },
        h('thead', {}, h('tr', {}, ...['Contract', 'Address', 'Chain', 'Compiler', 'Optimizer', 'EVM', 'Verify'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rows))));
}

/** "charged: the service shows 5, the formula gives 4". */
function describe(m: Mismatch): string {
  const bps = (value: string) => (/^\d+$/.test(value) ? formatBps(Number(value)) : value);
  if (m.source === 'records' && m.session === undefined) return `evidence: the service did not serve the records behind its settlements (${m.shown})`;
  if (m.source === 'records' && m.figure === 'evidence') {
    return m.shown === 'no report served'
      ? `evidence of conference ${m.session}: the settlement committed to ${m.expected}, and the service serves no monitor’s report of it`
      : `evidence of conference ${m.session}: the settlement committed to ${m.expected}, the records the service serves give ${m.shown}`;
  }
  if (m.source === 'records') return `measured availability of conference ${m.session}: the settlement emitted ${bps(m.expected)}, the records the service serves give ${bps(m.shown)}`;
  if (m.figure === 'measured') return `availability of conference ${m.session}: settled overdue at ${bps(m.shown)}, the contract’s rule gives ${bps(m.expected)}`;
  const who = m.source === 'chain' ? 'the chain’s event shows' : 'the service shows';
  if (m.figure === 'listed') return 'the service does not list this agreement';
  return `${m.figure}: ${who} ${m.shown}, expected ${m.expected}`;
}

/** The evidence line of an agreement's Availability cell: whether every settled conference's records give
 *  what its settlement emitted. */
function evidenceLine(evidence: Evidence | null): HTMLElement | null {
  if (evidence === null) return null;
  if (evidence === 'pending') return h('span', { class: 'muted evidence-check', 'data-evidence': 'pending' }, 'evidence: checking…');
  if ('error' in evidence) return h('span', { class: 'evidence-check warn', 'data-evidence': 'unread' }, '⚠ evidence not served');
  const states = new Set(evidence.checks.map((c) => c.state));
  if (states.has('differs') || states.has('unserved')) return h('span', { class: 'evidence-check warn', 'data-evidence': 'differs' }, '⚠ evidence differs');
  if (states.has('overdue')) {
    return h('span', { class: 'evidence-check', 'data-evidence': states.has('matches') ? 'matches' : 'overdue' },
      states.has('matches') ? '✓ evidence matches; ' : '', 'settled overdue: no evidence');
  }
  return h('span', { class: 'evidence-check ok', 'data-evidence': 'matches' }, '✓ evidence matches');
}

function agreementRow(cfg: Config, ag: LedgerAgreement, summary: AgreementSummary | undefined, evidenceState: Evidence | null): HTMLElement[] {
  const t = token(cfg, ag.tokenId);
  const mismatches = [...ag.mismatches, ...serviceMismatches(ag, summary)];
  const last = [...ag.sessions].reverse().find((s) => s.availabilityBps !== null);
  const amount = (value: bigint | null, id: string, label: string, service: string | null | undefined, chain: bigint | null) =>
    h('td', { class: 'amount', 'data-label': label, 'data-figure': id, 'data-wei': value === null ? '' : String(value), 'data-chain': chain === null ? '' : String(chain), 'data-service': service ?? '' },
      value === null ? '—' : formatAmount(value, t));
  const evidence = h('tr', { class: 'evidence', hidden: true, 'data-evidence-for': ag.id }, h('td', { colspan: COLUMNS.length }, 'Loading the evidence…'));
  let loaded = false;
  const toggle = h('button', { type: 'button', class: 'button small', 'aria-expanded': 'false', 'data-toggle': ag.id }, 'Evidence');
  toggle.addEventListener('click', () => {
    const open = evidence.hidden;
    evidence.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open && !loaded) {
      loaded = true;
      void showEvidence(cfg, ag, evidence.firstElementChild as HTMLElement, evidenceState);
    }
  });
  const figures = [...new Set(mismatches.map((m) => m.figure))];
  const row = h('tr', {
    id: `agreement-${ag.id}`,
    class: mismatches.length ? 'agreement mismatch' : 'agreement',
    'data-agreement-id': ag.id,
    'data-mismatch': mismatches.length ? figures.join(' ') : null,
  },
    h('th', { scope: 'row' }, h('a', { href: `/agreement/${ag.id}` }, `#${ag.id}`), h('br'), h('span', { class: 'muted mono', title: ag.customer }, shortAddress(ag.customer))),
    h('td', { 'data-label': 'Offer' }, h('span', { class: 'nowrap' }, `offer ${ag.offerId},`), ' ', h('span', { class: 'nowrap' }, `terms ${ag.termsId}`), h('br'), h('span', { class: 'muted' }, ag.model)),
    h('td', { 'data-label': 'Status', 'data-status': ag.status }, ag.status),
    h('td', { class: mismatches.length ? 'check warn' : 'check ok', 'data-label': 'Check', 'data-mismatches': mismatches.length },
      mismatches.length ? `⚠ ${figures.join(', ')} differ${figures.length === 1 ? 's' : ''}` : '✓ agrees'),
    amount(ag.deposit, 'deposit', 'Deposit', summary?.deposit, ag.deposit),
    h('td', { class: 'nowrap', 'data-label': 'Used', 'data-seconds': usedSeconds(ag) }, ag.sessions.length ? formatDuration(usedSeconds(ag)) : '—'),
    h('td', { 'data-label': 'Availability', 'data-bps': last?.availabilityBps ?? '' }, last?.availabilityBps != null ? formatBps(last.availabilityBps) : '—',
      ...(evidenceState === null ? [] : [h('br'), evidenceLine(evidenceState)])),
    amount(ag.expectedCharged, 'charged', 'Charged', summary?.charged, ag.charged),
    amount(ag.expectedRefund, 'refund', 'Refund', summary?.refund, ag.refund),
    h('td', { class: 'actions' }, toggle));
  // What differs, spelled out in a full-width row under the flagged one: expected against shown.
  const detail = mismatches.length
    ? h('tr', { class: 'mismatch-detail', 'data-mismatch-for': ag.id },
      h('td', { colspan: COLUMNS.length, class: 'notice' },
        h('ul', { class: 'mismatches' }, ...mismatches.map((m) => h('li', { 'data-figure': m.figure, 'data-source': m.source }, '⚠ ', `#${ag.id} `, describe(m))))))
    : null;
  return detail ? [row, detail, evidence] : [row, evidence];
}

/** A commitment, short, with the whole of it on hover and in `data-evidence`. */
function commitmentCell(label: string, value: string | null, attributes: Record<string, string> = {}): HTMLElement {
  return h('td', { class: 'mono', 'data-label': label, 'data-evidence': value ?? '', title: value ?? null, ...attributes }, value ? shortAddress(value) : '—');
}

/** Each settled conference's evidence: who measured it, over which period, and the figure and commitment
 *  the settlement emitted beside those the served records give. */
function evidenceTable(checks: EvidenceCheck[]): HTMLElement {
  const [number, by, period, slots, bpsEvent, bpsRecords, evEvent, evRecords, verdict] = EVIDENCE_COLUMNS;
  return h('table', { class: 'evidence-checks cards' },
    h('caption', {}, 'Evidence per conference: the settlement’s commitment and figure, recomputed here from the records the service serves'),
    h('thead', {}, h('tr', {}, ...EVIDENCE_COLUMNS.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...checks.map((c) => {
      const m = c.recomputed;
      const text = c.state === 'matches' ? '✓ matches' : c.state === 'overdue' ? 'settled overdue: no evidence' : c.state === 'unserved' ? '⚠ no report served' : '⚠ differs';
      return h('tr', { 'data-evidence-session': c.session, 'data-state': c.state },
        h('th', { scope: 'row', 'data-label': number }, c.session),
        h('td', { 'data-label': by }, c.by === 'monitor' ? 'the monitor (its signed report)' : 'the operator (its probes)'),
        h('td', { 'data-label': period }, `${formatTime(c.from)} – ${formatTime(c.to)}`),
        h('td', { 'data-label': slots }, m ? `${m.okSlots} / ${m.due} of ${m.intervalMs} ms (${m.records.length} records)` : '—'),
        h('td', { 'data-label': bpsEvent, 'data-bps': c.availabilityBps }, formatBps(c.availabilityBps)),
        h('td', { 'data-label': bpsRecords, 'data-bps': m?.availabilityBps ?? '' }, m ? formatBps(m.availabilityBps) : '—'),
        commitmentCell(evEvent, c.evidence),
        commitmentCell(evRecords, m?.evidence ?? null),
        h('td', { class: c.state === 'differs' || c.state === 'unserved' ? 'check warn' : 'check ok', 'data-label': verdict }, text));
    })));
}

/** The availability evidence: each settlement's evidence checked, the service's probes per conference,
 *  and the monitor's signed reports, beside what each settlement reported. */
async function showEvidence(cfg: Config, ag: LedgerAgreement, cell: HTMLElement, evidence: Evidence | null): Promise<void> {
  const t = token(cfg, ag.tokenId);
  const [number, started, ended, region, availability, charge, recomputed, transaction] = SETTLEMENT_COLUMNS;
  const settlements = h('table', { class: 'settlements cards' },
    h('caption', {}, 'On-chain, per conference'),
    h('thead', {}, h('tr', {}, ...SETTLEMENT_COLUMNS.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...ag.sessions.map((s, i) => {
      const link = s.settleTx ? explorerLink(cfg, 'tx', s.settleTx) : null;
      return h('tr', { 'data-session': i + 1 },
        h('th', { scope: 'row', 'data-label': number }, i + 1),
        h('td', { 'data-label': started }, s.startedAt === null ? 'never started' : formatTime(s.startedAt)),
        h('td', { 'data-label': ended }, s.endedAt === null ? '—' : formatTime(s.endedAt)),
        h('td', { 'data-label': region }, s.region === null ? '—' : regionNames(cfg, 1 << s.region).join('') || `region ${s.region}`),
        h('td', { 'data-label': availability, 'data-bps': s.availabilityBps ?? '' }, s.availabilityBps === null ? 'not settled' : formatBps(s.availabilityBps)),
        h('td', { class: 'amount', 'data-label': charge, 'data-wei': s.charge === null ? '' : String(s.charge) }, s.charge === null ? '—' : formatAmount(s.charge, t)),
        h('td', { class: 'amount', 'data-label': recomputed, 'data-wei': s.expectedCharge === null ? '' : String(s.expectedCharge) }, s.expectedCharge === null ? '—' : formatAmount(s.expectedCharge, t)),
        h('td', { class: 'mono', 'data-label': transaction }, s.settleTx ? (link ? h('a', { href: link, target: '_blank', rel: 'noopener' }, shortAddress(s.settleTx)) : s.settleTx) : '—'));
    })));
  let probes: HTMLElement;
  let checks: HTMLElement | null = null;
  let reports: HTMLElement | null = null;
  try {
    const known = evidence && evidence !== 'pending' && !('error' in evidence) ? evidence : null;
    const view = known?.view ?? (await api.probes(ag.id));
    if (known?.checks.length) checks = evidenceTable(known.checks);
    if (view.reports.length) {
      reports = h('table', { class: 'reports cards' },
        h('caption', {}, `The monitor’s signed reports (${view.measuredBy ?? 'no monitor'})`),
        h('thead', {}, h('tr', {}, ...REPORT_COLUMNS.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, ...view.reports.map((r) => h('tr', { 'data-report-session': r.session },
          h('th', { scope: 'row', 'data-label': REPORT_COLUMNS[0] }, r.session),
          h('td', { 'data-label': REPORT_COLUMNS[1] }, `${formatTime(r.startedAt)} – ${formatTime(r.endedAt)}`),
          h('td', { 'data-label': REPORT_COLUMNS[2] }, `${r.intervalMs} ms`),
          h('td', { 'data-label': REPORT_COLUMNS[3] }, r.records.length),
          h('td', { 'data-label': REPORT_COLUMNS[4], 'data-bps': r.availabilityBps }, formatBps(r.availabilityBps)),
          commitmentCell(REPORT_COLUMNS[5], r.evidence)))));
    }
    probes = view.sessions.length
      ? h('table', { class: 'probes cards' },
        h('caption', {}, `The service’s probes (below ${formatBps(view.fullRefundBelowBps)} the customer pays nothing)`),
        h('thead', {}, h('tr', {}, ...PROBE_COLUMNS.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, ...view.sessions.map((s) => h('tr', { 'data-probe-session': s.session },
          h('th', { scope: 'row', 'data-label': PROBE_COLUMNS[0] }, s.session),
          h('td', { 'data-label': PROBE_COLUMNS[1], 'data-probes': s.tally.probes }, s.tally.probes),
          h('td', { 'data-label': PROBE_COLUMNS[2], 'data-probes-ok': s.tally.probesOk }, s.tally.probesOk),
          h('td', { 'data-label': PROBE_COLUMNS[3], 'data-bps': s.measurement?.availabilityBps ?? '' }, s.measurement ? formatBps(s.measurement.availabilityBps) : '—'),
          h('td', { 'data-label': PROBE_COLUMNS[4] }, s.probes.filter((p) => !p.ok).slice(-5).map((p) => `${formatTime(p.at)}: ${p.detail ?? 'failed'}`).join('; ') || 'none')))))
      : h('p', { class: 'muted' }, view.measuredBy
        ? 'The operator recorded no probes of its own for this agreement: its monitor’s report is what settles it.'
        : 'The service recorded no probes for this agreement: no evidence is no availability, so a settlement reports 0 and refunds everything.');
  } catch (err) {
    probes = h('p', { class: 'alert' }, `The service’s probes could not be read: ${userMessage(err)}`);
  }
  const window = ag.window ? h('p', {}, `Reserved window: ${formatTime(ag.window.from)} to ${formatTime(ag.window.to)}; minimum charge ${formatAmount(ag.minimumCharge, t)}.`) : null;
  const cancels = ag.cancellations.length
    ? h('p', {}, 'Starts called off: ', ag.cancellations.map((c) => `${c.reason} (refund ${formatAmount(c.refund, t)})`).join('; '), '.')
    : null;
  replace(cell, h('div', { class: 'evidence-body' },
    h('p', {}, `Price ${formatAmount(ag.price, t)} per ${ag.model === 'fixedPrice' ? 'conference' : ag.model === 'timeLimited' ? 'minute' : 'second'} (the terms’ ${formatAmount(ag.expectedPrice, t)}), `,
      h('span', { 'data-surcharge-bps': ag.surchargeBps }, `surcharge ${formatBps(ag.surchargeBps)} (recomputed ${formatBps(ag.expectedSurchargeBps)}) on each amount as a whole, rounded down once; `),
      `regions ${regionNames(cfg, ag.allowedRegions).join(', ') || ag.allowedRegions}, GDPR ${ag.gdpr ? 'required' : 'not required'}.`),
    window, cancels, settlements, checks, reports, probes));
}

/** The accounts table's columns. */
const ACCOUNT_COLUMNS = ['Customer', 'Token', 'Deposited', 'Withdrawn', 'Charged', 'Locked', 'Free (recomputed)', 'Free (accountOf)', 'Withdrawal requested', 'Check'];

/** Each customer account recomputed from the events beside what the escrow holds. */
function accountsTable(cfg: Config, accounts: LedgerAccount[]): HTMLElement {
  if (accounts.length === 0) return h('p', { class: 'muted', id: 'accounts-empty' }, 'No customer has deposited into an account yet.');
  const cell = (label: string, value: bigint, t: ReturnType<typeof token>, figure: string) =>
    h('td', { class: 'amount', 'data-label': label, 'data-figure': figure, 'data-wei': String(value) }, formatAmount(value, t));
  return scrollBox('Customer accounts',
    h('table', { id: 'accounts', class: 'cards' },
      h('thead', {}, h('tr', {}, ...ACCOUNT_COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...accounts.map((a) => {
        const t = token(cfg, a.tokenId);
        const [customer, tokenColumn, deposited, withdrawn, charged, locked, expectedFree, free, withdrawal, check] = ACCOUNT_COLUMNS;
        const ok = a.mismatches.length === 0;
        return h('tr', { 'data-account': `${a.customer}:${a.tokenId}`, class: ok ? 'account' : 'account mismatch', 'data-mismatch': ok ? null : a.mismatches.join(' '), 'data-agreements': a.agreements.join(' ') },
          h('th', { scope: 'row', 'data-label': customer }, h('span', { class: 'mono', title: a.customer }, shortAddress(a.customer))),
          h('td', { 'data-label': tokenColumn }, t.symbol),
          cell(deposited, a.deposits, t, 'deposits'),
          cell(withdrawn, a.withdrawals, t, 'withdrawals'),
          cell(charged, a.charges, t, 'charges'),
          h('td', { class: 'amount', 'data-label': locked, 'data-figure': 'locked', 'data-wei': String(a.expectedLocked), 'data-chain': String(a.locked) },
            formatAmount(a.expectedLocked, t), a.locked === a.expectedLocked ? '' : h('span', { class: 'warn' }, ` (accountOf: ${formatAmount(a.locked, t)})`)),
          cell(expectedFree, a.expectedFree, t, 'expected-free'),
          cell(free, a.free, t, 'free'),
          h('td', { 'data-label': withdrawal, 'data-wei': String(a.withdrawal) }, a.withdrawal ? `${formatAmount(a.withdrawal, t)}, requested ${formatTime(a.withdrawalAt)}` : '—'),
          h('td', { class: ok ? 'check ok' : 'check warn', 'data-label': check }, ok ? '✓ agrees' : `⚠ ${a.mismatches.join(', ')} differ${a.mismatches.length === 1 ? 's' : ''}`));
      }))));
}

/** A call's arguments in a few words: numbers in full, addresses short, an order by its terms and nonce. */
function describeArgs(args: readonly unknown[]): string {
  const one = (v: unknown): string => {
    if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v === 'string') return /^0x[0-9a-fA-F]{40}$/.test(v) ? shortAddress(v) : v.length > 20 ? shortAddress(v) : v;
    if (v && typeof v === 'object' && 'nonce' in v && 'termsId' in v) {
      const o = v as { termsId: unknown; nonce: unknown };
      return `order (terms ${o.termsId}, nonce ${o.nonce})`;
    }
    return Array.isArray(v) ? `[${v.map(one).join(', ')}]` : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x));
  };
  return args.map(one).join(', ');
}

/** A skipped call decoded: which call of which batch, what it was, and the error it reverted with. */
interface DecodedFailure extends BatchFailure {
  calls: number | null;
  call: string | null;
  error: { name: string; text: string; sentence: string } | null;
}

/** Each skipped call with the batch's own calldata (the call it skipped) and its error decoded by the
 *  escrow's and its annex's errors (annex.ts). A batch sent through another contract shows no call. */
async function decodeFailures(reader: Reader, failures: BatchFailure[]): Promise<DecodedFailure[]> {
  const inputs = new Map<string, readonly Hex[] | null>();
  await Promise.all([...new Set(failures.map((f) => f.tx))].map(async (hash) => {
    try {
      const tx = await reader.getTransaction({ hash });
      const outer = decodeFunctionData({ abi: escrowAbi, data: tx.input });
      inputs.set(hash, outer.functionName === 'batch' ? ((outer.args?.[0] as readonly Hex[]) ?? null) : null);
    } catch {
      inputs.set(hash, null);
    }
  }));
  return failures.map((f) => {
    const calls = inputs.get(f.tx) ?? null;
    let call: string | null = null;
    if (calls?.[f.index]) {
      try {
        const inner = decodeFunctionData({ abi: escrowAbi, data: calls[f.index] });
        call = `${inner.functionName}(${describeArgs(inner.args ?? [])})`;
      } catch {
        call = null;
      }
    }
    const decoded = decodeRevert(f.reason);
    const error = decoded
      ? {
          name: decoded.name,
          text: `${decoded.name}(${decoded.args.map((v, i) => `${decoded.names[i] ? `${decoded.names[i]} ` : ''}${describeArgs([v])}`).join(', ')})`,
          sentence: contractErrorText(decoded.name),
        }
      : null;
    return { ...f, calls: calls?.length ?? null, call, error };
  });
}

/** The batches' skipped calls, one row each. */
function batchTable(cfg: Config, failures: DecodedFailure[]): HTMLElement {
  if (failures.length === 0) return h('p', { class: 'muted', id: 'batch-failures-empty' }, 'No batch has skipped a call.');
  const columns = ['Transaction', 'Block', 'Call', 'What it called', 'Error', 'In words'];
  return scrollBox('Calls the batches skipped',
    h('table', { id: 'batch-failures', class: 'cards' },
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...failures.map((f) => {
        const link = explorerLink(cfg, 'tx', f.tx);
        return h('tr', { 'data-batch-tx': f.tx, 'data-index': f.index, 'data-error': f.error?.name ?? '' },
          h('th', { scope: 'row', class: 'mono', 'data-label': columns[0], title: f.tx }, link ? h('a', { href: link, target: '_blank', rel: 'noopener' }, shortAddress(f.tx)) : shortAddress(f.tx)),
          h('td', { 'data-label': columns[1] }, String(f.blockNumber)),
          h('td', { 'data-label': columns[2] }, f.calls === null ? `#${f.index + 1}` : `#${f.index + 1} of ${f.calls}`),
          h('td', { class: 'mono', 'data-label': columns[3] }, f.call ?? '—'),
          h('td', { class: 'mono', 'data-label': columns[4], title: f.reason }, f.error?.text ?? `undecoded: ${shortAddress(f.reason)}`),
          h('td', { 'data-label': columns[5] }, f.error?.sentence ?? '—'));
      }))));
}

/** Runs `task` on every item, at most `limit` at a time. */
async function inParallel<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const page: Page = async (root) => {
  const cfg = await config();
  const checks = [...selfCheck(), ...evidenceSelfCheck()];
  let csvUrl: string | null = null;
  const status = h('p', { id: 'audit-summary', role: 'status' }, 'Reading the escrow’s events…');
  const tbody = h('tbody', {});
  const csv = h('a', { id: 'csv', class: 'button', download: 'agreements.csv', href: '#', 'aria-disabled': 'true' }, 'Download CSV');
  const reload = h('button', { type: 'button', id: 'reload', class: 'button secondary' }, 'Read again');
  const accountsStatus = h('p', { id: 'accounts-summary', role: 'status' }, 'Reading the accounts…');
  const accountsBox = h('div', {});
  const batchesStatus = h('p', { id: 'batches-summary', role: 'status' }, 'Reading the batches…');
  const batchesBox = h('div', {});

  replace(root,
    h('h1', {}, 'Audit'),
    cfg.rpcUrl
      ? h('p', {}, 'Everything below is read from the chain through ', h('code', {}, cfg.rpcUrl),
        ' and recomputed in this page from the contracts’ formulas; the service’s own figures are only compared, never trusted. No wallet is needed.')
      : h('p', {}, 'Everything below is read from the chain through your wallet (this service names no public endpoint of its chain)',
        ' and recomputed in this page from the contracts’ formulas; the service’s own figures are only compared, never trusted.'),
    contractsSection(cfg),
    h('section', { class: 'card wide', id: 'agreements-section', 'aria-labelledby': 'agreements-title' },
      h('h2', { id: 'agreements-title' }, 'Agreements and settlements'),
      h('p', { class: 'hint', id: 'evidence-how' }, 'Each settlement emits its availability and a commitment to the probe records behind it. This page reads those records from the service (the monitor’s signed report when the terms name a monitor, the operator’s probes otherwise), recomputes the commitment (keccak256 of the probe interval and each record’s time and outcome) and the availability (the share of the period’s slots of one probe interval that hold a successful probe), and flags any settlement they do not match.'),
      h('p', { id: 'self-check', 'data-failures': checks.length, class: checks.length ? 'alert' : 'hint' },
        checks.length ? `The page’s formulas failed their own check: ${checks.join('; ')}` : 'The page’s formulas passed their self-check (every model, the surcharge, the split, the availability and its evidence commitment).'),
      status,
      h('div', { class: 'row' }, reload, csv),
      scrollBox('Agreements and settlements',
        h('table', { id: 'agreements', class: 'cards' },
          h('thead', {}, h('tr', {}, ...COLUMNS.map((t) => h('th', { scope: 'col' }, t)))),
          tbody))),
    h('section', { class: 'card wide', id: 'accounts-section', 'aria-labelledby': 'accounts-title' },
      h('h2', { id: 'accounts-title' }, 'Customer accounts'),
      h('p', { class: 'hint' }, 'For each customer and token: deposits (Deposited) − withdrawals (AccountWithdrawn) − the charges of the conferences opened from the account (AgreementSettled of the agreements OrderFilled opened) − what its open conferences lock (their AgreementSigned deposits) must be the free balance the escrow holds (accountOf), to the wei; the locks must be its locked balance.'),
      accountsStatus,
      accountsBox),
    h('section', { class: 'card wide', id: 'batches-section', 'aria-labelledby': 'batches-title' },
      h('h2', { id: 'batches-title' }, 'Batches: skipped calls'),
      h('p', { class: 'hint' }, 'The operator opens, activates and settles many agreements in one transaction (batch). A call that reverts is skipped, changes nothing and is reported (BatchCallFailed): here each one with the call it was and its error, decoded.'),
      batchesStatus,
      batchesBox));

  let generation = 0;
  let anchored = false;
  async function load(): Promise<void> {
    const mine = ++generation;
    status.textContent = 'Reading the escrow’s events…';
    status.removeAttribute('data-agreements');
    let ledger: Ledger;
    let service: AgreementSummary[];
    try {
      [ledger, service] = await Promise.all([readLedger(publicClient(cfg), cfg), allServiceAgreements()]);
    } catch (err) {
      status.textContent = `The history could not be read: ${userMessage(err)}`;
      return;
    }
    if (mine !== generation) return;
    drawAccounts(ledger);
    void drawBatches(ledger, mine);
    const byId = new Map(service.map((s) => [s.id, s]));
    // The rows first, then each settled agreement's evidence, redrawing its rows once checked.
    const rows = new Map<number, HTMLElement[]>();
    const draw = (ag: LedgerAgreement, evidence: Evidence | null): HTMLElement[] => {
      const next = agreementRow(cfg, ag, byId.get(ag.id), evidence);
      const previous = rows.get(ag.id);
      if (previous) {
        previous[0].before(...next);
        for (const row of previous) row.remove();
      }
      rows.set(ag.id, next);
      return next;
    };
    const settled = ledger.agreements.filter((ag) => ag.sessions.some((s) => s.evidence !== null));
    replace(
      tbody,
      ...(ledger.agreements.length
        ? ledger.agreements.flatMap((ag) => draw(ag, settled.includes(ag) ? 'pending' : null))
        : [h('tr', { class: 'empty' }, h('td', { colspan: COLUMNS.length }, 'No agreement has been signed on this escrow yet.'))]),
    );
    status.textContent = `Recomputing the evidence of ${settled.length} settled agreements from the records the service serves…`;
    const evidence = new Map<number, EvidenceCheck[]>();
    await inParallel(settled, EVIDENCE_READS, async (ag) => {
      let state: Evidence;
      try {
        const view = await api.probes(ag.id);
        const checked = checkEvidence(ag, ledger.terms.get(ag.termsId)!, view);
        ag.mismatches.push(...checked.mismatches);
        evidence.set(ag.id, checked.checks);
        state = { view, checks: checked.checks };
      } catch (err) {
        ag.mismatches.push({ figure: 'evidence', source: 'records', expected: 'the records behind its settlements', shown: userMessage(err) });
        state = { error: userMessage(err) };
      }
      if (mine === generation) draw(ag, state);
    });
    if (mine !== generation) return;
    const conferences = [...evidence.values()].flat();
    const flagged = ledger.agreements.filter((ag) => ag.mismatches.length || serviceMismatches(ag, byId.get(ag.id)).length);
    const figures = ledger.agreements.reduce((n, ag) => n + ag.mismatches.length + serviceMismatches(ag, byId.get(ag.id)).length, 0);
    const onChain = new Set(ledger.agreements.map((a) => a.id));
    const unknown = service.filter((s) => !onChain.has(s.id));
    status.dataset.agreements = String(ledger.agreements.length);
    status.dataset.mismatches = String(figures);
    status.dataset.flagged = String(flagged.length);
    status.dataset.block = String(ledger.toBlock);
    status.dataset.evidenceChecked = String(conferences.length);
    status.dataset.evidenceMatches = String(conferences.filter((c) => c.state === 'matches').length);
    status.className = figures || unknown.length ? 'alert' : '';
    const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
    status.textContent = `${n(ledger.agreements.length, 'agreement', 'agreements')} on chain up to block ${ledger.toBlock}; ` +
      (figures ? `${n(figures, 'figure differs', 'figures differ')}, in ${n(flagged.length, 'agreement', 'agreements')} (flagged below).` : `every figure agrees with the formulas and the service, and the evidence of ${n(conferences.length, 'settled conference', 'settled conferences')} matches what its settlement emitted.`) +
      (unknown.length ? ` The service lists ${n(unknown.length, 'agreement', 'agreements')} the chain does not know: ${unknown.map((s) => `#${s.id}`).join(', ')}.` : '');
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob([toCsv(ledger, byId)], { type: 'text/csv' }));
    csv.href = csvUrl;
    csv.removeAttribute('aria-disabled');
    showNotice(null);
    // `/audit#agreement-7` (the agreement page's link to its evidence): that agreement's evidence, open.
    const anchor = /^#agreement-(\d+)$/.exec(location.hash);
    if (anchor && !anchored) {
      anchored = true;
      const toggle = tbody.querySelector<HTMLButtonElement>(`button[data-toggle="${anchor[1]}"]`);
      if (toggle?.getAttribute('aria-expanded') === 'false') toggle.click();
      document.getElementById(`agreement-${anchor[1]}`)?.scrollIntoView({ block: 'start' });
    }
  }
  function drawAccounts(ledger: Ledger): void {
    const flagged = ledger.accounts.filter((a) => a.mismatches.length);
    accountsStatus.dataset.accounts = String(ledger.accounts.length);
    accountsStatus.dataset.mismatches = String(flagged.length);
    accountsStatus.className = flagged.length ? 'alert' : '';
    accountsStatus.textContent = ledger.accounts.length === 0
      ? 'No account yet.'
      : flagged.length
        ? `${flagged.length} of ${ledger.accounts.length} accounts differ from their events (flagged below).`
        : `${ledger.accounts.length} account${ledger.accounts.length === 1 ? '' : 's'}: each free and locked balance agrees with its events to the wei.`;
    replace(accountsBox, accountsTable(cfg, ledger.accounts));
  }

  async function drawBatches(ledger: Ledger, mine: number): Promise<void> {
    let decoded: DecodedFailure[];
    try {
      decoded = await decodeFailures(publicClient(cfg), ledger.batchFailures);
    } catch (err) {
      if (mine === generation) batchesStatus.textContent = `The batches could not be read: ${userMessage(err)}`;
      return;
    }
    if (mine !== generation) return;
    batchesStatus.dataset.failures = String(decoded.length);
    batchesStatus.dataset.batches = String(new Set(decoded.map((f) => f.tx)).size);
    batchesStatus.textContent = decoded.length
      ? `${decoded.length} call${decoded.length === 1 ? '' : 's'} skipped in ${batchesStatus.dataset.batches} batch transaction${batchesStatus.dataset.batches === '1' ? '' : 's'}; the other calls of each went through.`
      : 'No batch has skipped a call.';
    replace(batchesBox, batchTable(cfg, decoded));
  }

  reload.addEventListener('click', () => void load());
  await load();
  return () => {
    if (csvUrl) URL.revokeObjectURL(csvUrl);
  };
};
export default page;
