// The escrow's books as the chain tells them: every agreement, conference and settlement read from
// the escrow's events, and every figure recomputed here from the contracts' formulas
// (pricing.ts, which follows contracts/src/libraries/Pricing.sol; ConferenceEscrow `_settle`,
// `_cancel`, `close`), so an auditor needs to trust neither the service nor the events' own arithmetic.
import { zeroAddress, type Hex } from 'viem';
import type { AgreementSummary, Model, ProbesView } from './api';
import { bookAbi, escrowAbi, type Reader } from './chain';
import type { Config } from './config';
import { measure, NO_EVIDENCE, type EvidenceRecord, type Measured } from './evidence';
import { accountLock, chargeFor, depositFor, minutesBought, splitCharge, surchargeBps, surcharged } from './pricing';

/** The contracts' `IOfferBook.Model` enum, in order. */
export const MODELS: Model[] = ['fixedPrice', 'dynamicPrice', 'timeLimited', 'flexiblePeriod'];

/** `IConferenceEscrow.CancelReason`, in order. */
export const CANCEL_REASONS = ['cancelled by the customer', 'declined by the operator', 'activation timed out'] as const;

export interface Share {
  providerId: number;
  component: bigint;
}

/** One terms version as the escrow stores it (`termsOf`). */
export interface ChainTerms {
  id: number;
  offerId: number;
  model: Model;
  tokenId: number;
  /** The sum of the components plus the margin (P). */
  price: bigint;
  maxDuration: number;
  regions: number;
  gdprSurchargeBps: number;
  regionSurchargeBps: number;
  gdpr: boolean;
  open: boolean;
  owner: `0x${string}`;
  margin: bigint;
  minimumCharge: bigint;
  /** The terms' independent monitor, whose signed report alone settles; the zero address when the
   *  operator reports the figure. */
  monitor: `0x${string}`;
  shares: Share[];
}

// ---------------------------------------------------------------------------------------------
// The escrow's history, read from its events.
// ---------------------------------------------------------------------------------------------

/** One conference of an agreement (several for TimeLimited), or a FlexiblePeriod window settled
 *  without a start (no startedAt, nothing used). */
export interface Session {
  startedAt: number | null;
  endedAt: number | null;
  region: number | null;
  availabilityBps: number | null;
  /** The figures the AgreementSettled event reports (null until settled). */
  charge: bigint | null;
  refund: bigint | null;
  refundDeferred: boolean | null;
  /** The event's commitment to the probe records behind `availabilityBps` (zero when settled overdue). */
  evidence: Hex | null;
  /** Recomputed here: the charge from the formula, given the event's availability. */
  expectedCharge: bigint | null;
  settleTx: `0x${string}` | null;
}

/** What differs: a figure, who shows it (the chain's events, the service, or the records the service
 *  serves as a settlement's evidence, recomputed), and both values. `evidence` and `measured` (the
 *  availability the records give) are per conference: `session` numbers it (1 for the first). */
export interface Mismatch {
  figure: 'deposit' | 'price' | 'surcharge' | 'charged' | 'refund' | 'availability' | 'status' | 'listed' | 'evidence' | 'measured';
  source: 'chain' | 'service' | 'records';
  expected: string;
  shown: string;
  session?: number;
}

export interface LedgerAgreement {
  id: number;
  termsId: number;
  offerId: number;
  customer: `0x${string}`;
  model: Model;
  tokenId: number;
  allowedRegions: number;
  gdpr: boolean;
  /** The price per unit the escrow stored (the terms' price P), and the terms' own. */
  price: bigint;
  expectedPrice: bigint;
  /** The constraint surcharge the escrow stored, and the one recomputed from the terms and constraints. */
  surchargeBps: number;
  expectedSurchargeBps: number;
  /** The deposit the AgreementSigned event reports, and the one recomputed (null if not computable:
   *  TimeLimited, whose minute count no event carries, is checked to be ⌊P · n · k⌋ for a whole n instead). */
  deposit: bigint;
  expectedDeposit: bigint | null;
  /** FlexiblePeriod: the surcharged minimum charge and the window. */
  minimumCharge: bigint;
  window: { from: number; to: number } | null;
  sessions: Session[];
  startRequests: number;
  /** The time of the last start request (FlexiblePeriod: whether it was owed an activation). */
  requestedAt: number | null;
  cancellations: { reason: string; refund: bigint; expectedRefund: bigint }[];
  /** Σ charges as the events report them, and as recomputed. */
  charged: bigint;
  expectedCharged: bigint;
  /** The last refund the chain paid or credited (settlement, cancellation or close), and the recomputed one. */
  refund: bigint | null;
  expectedRefund: bigint | null;
  /** Where the agreement stands according to its events. */
  status: 'requested' | 'idle' | 'active' | 'ended' | 'settled' | 'refunded';
  /** Opened from its customer's account by a signed order (`OrderFilled`): the order's nonce; null for an
   *  agreement signed directly. Such an agreement locked the deposit of the terms' longest conference
   *  (every model), and its refund goes back to the account's free balance. */
  orderNonce: bigint | null;
  signTx: `0x${string}`;
  mismatches: Mismatch[];
}

/** A customer's account in one token, recomputed from the events: what came in and went out of it, the
 *  charges of the conferences it opened and what they still lock, against what `accountOf` holds. */
export interface LedgerAccount {
  customer: `0x${string}`;
  tokenId: number;
  /** Σ Deposited, Σ AccountWithdrawn, Σ AgreementSettled.charge of its agreements (the events' figures). */
  deposits: bigint;
  withdrawals: bigint;
  charges: bigint;
  /** Σ deposits (AgreementSigned) of its agreements not yet settled or refunded. */
  expectedLocked: bigint;
  /** deposits − withdrawals − charges − locked: what must be free. */
  expectedFree: bigint;
  /** `accountOf` as the escrow holds it. */
  free: bigint;
  locked: bigint;
  withdrawal: bigint;
  withdrawalAt: number;
  agreements: number[];
  /** The figures that differ: `free`, `locked`. */
  mismatches: ('free' | 'locked')[];
}

/** One call a batch skipped (`BatchCallFailed`): its transaction, its place in the batch, and the revert
 *  data it failed with (the page decodes it: annex.ts). */
export interface BatchFailure {
  tx: `0x${string}`;
  blockNumber: bigint;
  index: number;
  reason: Hex;
}

export interface Ledger {
  agreements: LedgerAgreement[];
  /** Every customer account (customer, token) the events name, recomputed. */
  accounts: LedgerAccount[];
  /** Every call a batch skipped, oldest first. */
  batchFailures: BatchFailure[];
  terms: Map<number, ChainTerms>;
  /** EarningsWithdrawn events: what each provider was paid out, per token. */
  withdrawals: { providerId: number; tokenId: number; payout: `0x${string}`; amount: bigint; tx: `0x${string}` }[];
  /** The block the ledger was read up to. */
  toBlock: bigint;
}

interface RawLog {
  eventName: string;
  args: Record<string, unknown>;
  blockNumber: bigint;
  logIndex: number;
  transactionHash: `0x${string}`;
  /** The block's time, when the node gives it with the log (anvil does); else read once per block. */
  blockTimestamp?: bigint | null;
}

/** Blocks per `eth_getLogs` request: well under the limits public RPCs set. */
const CHUNK = 5_000n;

/** Every event `abi` describes that `address` emitted since `fromBlock`, oldest first, in chunks. */
export async function readEvents(client: Reader, address: `0x${string}`, abi: typeof escrowAbi, fromBlock: bigint, toBlock: bigint): Promise<RawLog[]> {
  const logs: RawLog[] = [];
  for (let from = fromBlock; from <= toBlock; from += CHUNK) {
    const to = from + CHUNK - 1n < toBlock ? from + CHUNK - 1n : toBlock;
    const chunk = (await client.getContractEvents({ address, abi, fromBlock: from, toBlock: to })) as unknown as RawLog[];
    logs.push(...chunk);
  }
  return logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
}

/** A terms version from `termsOf`, typed. */
export async function readTerms(client: Reader, cfg: Config, termsId: number): Promise<ChainTerms> {
  const t = (await client.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'termsOf', args: [termsId] })) as {
    price: bigint; maxDuration: number; offerId: number; regions: number; gdprSurchargeBps: number; regionSurchargeBps: number;
    model: number; tokenId: number; gdpr: boolean; open: boolean; owner: `0x${string}`; margin: bigint; minimumCharge: bigint;
    monitor: `0x${string}`; shares: readonly { providerId: number; component: bigint }[];
  };
  return {
    id: termsId,
    offerId: Number(t.offerId),
    model: MODELS[Number(t.model)],
    tokenId: Number(t.tokenId),
    price: BigInt(t.price),
    maxDuration: Number(t.maxDuration),
    regions: Number(t.regions),
    gdprSurchargeBps: Number(t.gdprSurchargeBps),
    regionSurchargeBps: Number(t.regionSurchargeBps),
    gdpr: t.gdpr,
    open: t.open,
    owner: t.owner,
    margin: BigInt(t.margin),
    minimumCharge: BigInt(t.minimumCharge),
    monitor: t.monitor,
    shares: t.shares.map((s) => ({ providerId: Number(s.providerId), component: BigInt(s.component) })),
  };
}

/** Reads the escrow's whole history from `config.deployBlock` and recomputes every figure. */
export async function readLedger(client: Reader, cfg: Config): Promise<Ledger> {
  const toBlock = await client.getBlockNumber();
  const logs = await readEvents(client, cfg.escrow, escrowAbi, BigInt(cfg.deployBlock), toBlock);

  // What the formulas need beyond the events: each agreement's terms (its model, price, surcharge and
  // constraints are in its AgreementSigned event, the terms' own shares and margin are not in any), the
  // time of each activation block (startedAt is the activation block's timestamp) and of each start
  // request, and the activation window (whether a FlexiblePeriod start was owed an activation).
  const termsIds = [...new Set(logs.filter((l) => l.eventName === 'AgreementSigned').map((l) => Number(l.args.termsId)))];
  const terms = new Map<number, ChainTerms>();
  await Promise.all(termsIds.map(async (id) => terms.set(id, await readTerms(client, cfg, id))));
  const timed = logs.filter((l) => l.eventName === 'AgreementActivated' || l.eventName === 'StartRequested');
  const blockTime = new Map<bigint, number>();
  for (const l of timed) if (l.blockTimestamp != null) blockTime.set(l.blockNumber, Number(l.blockTimestamp));
  const untimed = [...new Set(timed.map((l) => l.blockNumber).filter((n) => !blockTime.has(n)))];
  await Promise.all(untimed.map(async (n) => blockTime.set(n, Number((await client.getBlock({ blockNumber: n })).timestamp))));
  const activationWindow = Number(await client.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'ACTIVATION_WINDOW' }));
  // Agreements opened from an account: `OrderFilled` follows their `AgreementSigned` in the same call.
  const orders = new Map(logs.filter((l) => l.eventName === 'OrderFilled').map((l) => [Number(l.args.agreementId as bigint), l.args.nonce as bigint]));
  const batchFailures: BatchFailure[] = [];
  /** Per account (`customer:tokenId`): deposits and withdrawals, from the events. */
  const moves = new Map<string, { customer: `0x${string}`; tokenId: number; deposits: bigint; withdrawals: bigint }>();
  const moveOf = (customer: `0x${string}`, tokenId: number) => {
    const key = `${customer.toLowerCase()}:${tokenId}`;
    let m = moves.get(key);
    if (!m) moves.set(key, (m = { customer, tokenId, deposits: 0n, withdrawals: 0n }));
    return m;
  };

  const byId = new Map<number, LedgerAgreement>();
  const withdrawals: Ledger['withdrawals'] = [];
  for (const log of logs) {
    const a = log.args;
    if (log.eventName === 'EarningsWithdrawn') {
      withdrawals.push({ providerId: Number(a.providerId), tokenId: Number(a.tokenId), payout: a.payout as `0x${string}`, amount: a.amount as bigint, tx: log.transactionHash });
      continue;
    }
    if (log.eventName === 'Deposited' || log.eventName === 'AccountWithdrawn') {
      const m = moveOf(a.customer as `0x${string}`, Number(a.tokenId));
      if (log.eventName === 'Deposited') m.deposits += a.amount as bigint;
      else m.withdrawals += a.amount as bigint;
      continue;
    }
    if (log.eventName === 'BatchCallFailed') {
      batchFailures.push({ tx: log.transactionHash, blockNumber: log.blockNumber, index: Number(a.index as bigint), reason: a.reason as Hex });
      continue;
    }
    if (a.agreementId === undefined) continue;
    const id = Number(a.agreementId as bigint);
    if (log.eventName === 'AgreementSigned') {
      const t = terms.get(Number(a.termsId))!;
      // As the escrow recorded it at signing, from the event alone.
      const s = { allowedRegions: Number(a.allowedRegions), gdpr: a.gdpr as boolean, price: BigInt(a.price as bigint), surchargeBps: Number(a.surchargeBps), model: Number(a.model), tokenId: Number(a.tokenId) };
      const bps = surchargeBps(t, s.allowedRegions, s.gdpr);
      const model = MODELS[s.model];
      const orderNonce = orders.get(id) ?? null;
      byId.set(id, {
        id,
        termsId: t.id,
        offerId: t.offerId,
        customer: a.customer as `0x${string}`,
        model,
        tokenId: s.tokenId,
        allowedRegions: s.allowedRegions,
        gdpr: s.gdpr,
        price: s.price,
        expectedPrice: t.price,
        surchargeBps: s.surchargeBps,
        expectedSurchargeBps: bps,
        deposit: a.deposit as bigint,
        expectedDeposit: orderNonce !== null
          ? accountLock(model, t.price, bps, t.maxDuration, t.minimumCharge)
          : model === 'fixedPrice' || model === 'dynamicPrice' ? depositFor(model, t.price, bps, BigInt(t.maxDuration), 0n) : null,
        minimumCharge: model === 'flexiblePeriod' ? surcharged(t.minimumCharge, bps) : 0n,
        window: null,
        sessions: [],
        startRequests: 0,
        requestedAt: null,
        cancellations: [],
        charged: 0n,
        expectedCharged: 0n,
        refund: null,
        expectedRefund: null,
        status: orderNonce !== null || model === 'fixedPrice' || model === 'dynamicPrice' ? 'requested' : 'idle',
        orderNonce,
        signTx: log.transactionHash,
        mismatches: [],
      });
      continue;
    }
    const ag = byId.get(id);
    if (!ag) continue;
    const open = ag.sessions.at(-1);
    switch (log.eventName) {
      case 'WindowReserved':
        ag.window = { from: Number(a.from as bigint), to: Number(a.to as bigint) };
        ag.expectedDeposit = depositFor('flexiblePeriod', ag.expectedPrice, ag.expectedSurchargeBps, BigInt(ag.window.to - ag.window.from), ag.minimumCharge);
        break;
      case 'StartRequested':
        ag.startRequests += 1;
        ag.requestedAt = blockTime.get(log.blockNumber) ?? null;
        ag.status = 'requested';
        break;
      case 'AgreementActivated':
        ag.sessions.push({
          startedAt: blockTime.get(log.blockNumber) ?? null, endedAt: null, region: Number(a.region), availabilityBps: null,
          charge: null, refund: null, refundDeferred: null, evidence: null, expectedCharge: null, settleTx: null,
        });
        ag.status = 'active';
        break;
      case 'AgreementEnded':
        if (open && open.endedAt === null) open.endedAt = Number(a.endedAt as bigint);
        ag.status = 'ended';
        break;
      case 'AgreementSettled': {
        // A conference that ended, or (FlexiblePeriod) a window that passed without one.
        let session = open && open.charge === null && open.endedAt !== null ? open : undefined;
        if (!session) {
          session = { startedAt: null, endedAt: null, region: null, availabilityBps: null, charge: null, refund: null, refundDeferred: null, evidence: null, expectedCharge: null, settleTx: null };
          ag.sessions.push(session);
        }
        const used = session.startedAt !== null && session.endedAt !== null ? BigInt(session.endedAt - session.startedAt) : 0n;
        session.availabilityBps = Number(a.availabilityBps);
        session.charge = a.charge as bigint;
        session.refund = a.refund as bigint;
        session.refundDeferred = a.refundDeferred as boolean;
        session.evidence = a.evidence as Hex;
        session.settleTx = log.transactionHash;
        // Charged as the contract charges, from the terms' price and the surcharge the constraints give.
        session.expectedCharge = chargeFor(ag.model, ag.expectedPrice, ag.expectedSurchargeBps, used, ag.minimumCharge, session.availabilityBps);
        ag.charged += session.charge;
        ag.expectedCharged += session.expectedCharge;
        if (ag.model === 'timeLimited' && ag.orderNonce === null) {
          ag.status = 'idle';
        } else {
          ag.status = 'settled';
          ag.refund = session.refund;
          ag.expectedRefund = ag.deposit - session.expectedCharge;
        }
        break;
      }
      case 'StartCancelled': {
        const reason = Number(a.reason);
        // An agreement opened from an account is one conference: a start called off refunds it all.
        const backToIdle = ag.orderNonce === null && (ag.model === 'timeLimited' || (ag.model === 'flexiblePeriod' && !flexibleRefunded(ag, reason, activationWindow)));
        const expectedRefund = backToIdle ? 0n : ag.deposit;
        ag.cancellations.push({ reason: CANCEL_REASONS[reason] ?? `reason ${reason}`, refund: a.refund as bigint, expectedRefund });
        ag.refund = a.refund as bigint;
        ag.expectedRefund = expectedRefund;
        ag.status = backToIdle ? 'idle' : 'refunded';
        break;
      }
      case 'AgreementClosed':
        ag.refund = a.refund as bigint;
        ag.expectedRefund = ag.deposit - ag.expectedCharged;
        ag.status = 'settled';
        break;
    }
  }
  const agreements = [...byId.values()].sort((x, y) => y.id - x.id);
  for (const ag of agreements) ag.mismatches = chainMismatches(ag, terms.get(ag.termsId)!);
  const accounts = await recomputeAccounts(client, cfg, agreements, moves, moveOf, toBlock);
  return { agreements, accounts, batchFailures, terms, withdrawals, toBlock };
}

/** Every account the events name, recomputed: deposits − withdrawals − the charges of the agreements it
 *  opened − what its open agreements lock must be `accountOf(customer, token).free`, to the wei, and the
 *  locks must be its `locked`. */
async function recomputeAccounts(
  client: Reader,
  cfg: Config,
  agreements: LedgerAgreement[],
  moves: Map<string, { customer: `0x${string}`; tokenId: number; deposits: bigint; withdrawals: bigint }>,
  moveOf: (customer: `0x${string}`, tokenId: number) => { customer: `0x${string}`; tokenId: number; deposits: bigint; withdrawals: bigint },
  toBlock: bigint,
): Promise<LedgerAccount[]> {
  const opened = agreements.filter((ag) => ag.orderNonce !== null);
  for (const ag of opened) moveOf(ag.customer, ag.tokenId);
  return Promise.all([...moves.values()].map(async (m) => {
    const mine = opened.filter((ag) => ag.customer.toLowerCase() === m.customer.toLowerCase() && ag.tokenId === m.tokenId);
    const charges = mine.reduce((sum, ag) => sum + ag.charged, 0n);
    const expectedLocked = mine.filter((ag) => ag.status !== 'settled' && ag.status !== 'refunded').reduce((sum, ag) => sum + ag.deposit, 0n);
    const expectedFree = m.deposits - m.withdrawals - charges - expectedLocked;
    const held = (await client.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'accountOf', args: [m.customer, m.tokenId], blockNumber: toBlock })) as {
      free: bigint; locked: bigint; withdrawal: bigint; withdrawalAt: number | bigint;
    };
    const account: LedgerAccount = {
      customer: m.customer, tokenId: m.tokenId, deposits: m.deposits, withdrawals: m.withdrawals, charges, expectedLocked, expectedFree,
      free: BigInt(held.free), locked: BigInt(held.locked), withdrawal: BigInt(held.withdrawal), withdrawalAt: Number(held.withdrawalAt),
      agreements: mine.map((ag) => ag.id).sort((x, y) => x - y), mismatches: [],
    };
    if (account.free !== expectedFree) account.mismatches.push('free');
    if (account.locked !== expectedLocked) account.mismatches.push('locked');
    return account;
  })).then((list) => list.sort((x, y) => (x.customer === y.customer ? x.tokenId - y.tokenId : x.customer.toLowerCase() < y.customer.toLowerCase() ? -1 : 1)));
}

/** Whether a FlexiblePeriod start called off for `reason` (`CancelReason`) refunds everything (`_cancel`):
 *  the service was at fault when the operator declined, or let pass the activation window of a start it
 *  was owed (one that left it the whole window before the reservation's end); otherwise the agreement
 *  goes back to Idle and keeps the deposit. */
function flexibleRefunded(ag: LedgerAgreement, reason: number, activationWindow: number): boolean {
  if (reason === 1) return true;
  if (reason !== 2) return false;
  return ag.requestedAt !== null && ag.window !== null && ag.requestedAt + activationWindow < ag.window.to;
}

/** Where the chain's own figures differ from the formulas. */
export function chainMismatches(ag: LedgerAgreement, terms: ChainTerms): Mismatch[] {
  const out: Mismatch[] = [];
  const check = (figure: Mismatch['figure'], expected: bigint | null, shown: bigint | null) => {
    if (expected !== null && shown !== null && expected !== shown) out.push({ figure, source: 'chain', expected: String(expected), shown: String(shown) });
  };
  check('price', ag.expectedPrice, ag.price);
  check('surcharge', BigInt(ag.expectedSurchargeBps), BigInt(ag.surchargeBps));
  if (ag.expectedDeposit !== null) check('deposit', ag.expectedDeposit, ag.deposit);
  else if (ag.model === 'timeLimited' && minutesBought(ag.expectedPrice, ag.expectedSurchargeBps, ag.deposit, terms.maxDuration) === null) {
    // Whole minutes, no more than the terms allow: deposit = ⌊P · n · k⌋ with 1 ≤ n ≤ maxDuration / 60.
    const k = `(10000 + ${ag.expectedSurchargeBps}) / 10000`;
    out.push({ figure: 'deposit', source: 'chain', expected: `⌊${ag.expectedPrice} × whole minutes (≤ ${terms.maxDuration / 60}) × ${k}⌋`, shown: String(ag.deposit) });
  }
  check('charged', ag.expectedCharged, ag.charged);
  check('refund', ag.expectedRefund, ag.refund);
  return out;
}

/** Where the service's figures (`GET /api/agreements`) differ from the recomputed ones. */
export function serviceMismatches(ag: LedgerAgreement, summary: AgreementSummary | undefined): Mismatch[] {
  if (!summary) return [{ figure: 'listed', source: 'service', expected: 'listed', shown: 'missing' }];
  const out: Mismatch[] = [];
  const check = (figure: Mismatch['figure'], expected: string | null, shown: string | null) => {
    if (expected !== shown) out.push({ figure, source: 'service', expected: expected ?? 'none', shown: shown ?? 'none' });
  };
  check('price', String(ag.expectedPrice), summary.price);
  check('surcharge', String(ag.expectedSurchargeBps), String(summary.surchargeBps));
  check('deposit', String(ag.expectedDeposit ?? ag.deposit), summary.deposit);
  check('charged', String(ag.expectedCharged), summary.charged);
  check('refund', ag.expectedRefund === null ? null : String(ag.expectedRefund), summary.refund ?? null);
  const lastSettled = [...ag.sessions].reverse().find((s) => s.availabilityBps !== null);
  if (lastSettled) check('availability', String(lastSettled.availabilityBps), summary.availabilityBps == null ? null : String(summary.availabilityBps));
  check('status', ag.status, summary.chainStatus);
  return out;
}

/** One settled conference's evidence: what the settlement emitted beside what the records the service
 *  serves give, recomputed here (evidence.ts). */
export interface EvidenceCheck {
  /** 1 for the agreement's first conference (the chain's session number). */
  session: number;
  /** Whose records settle it: the terms' monitor (its signed report) or the operator (its probes). */
  by: 'monitor' | 'operator';
  /** The measured period, from the chain: the conference's [startedAt, endedAt), or the window's. */
  from: number;
  to: number;
  evidence: Hex;
  availabilityBps: number;
  /** Recomputed from the records served; null when settled overdue (no evidence) or none was served. */
  recomputed: Measured | null;
  /** `overdue`: settled without evidence, at the contract's figure for that (0 with a monitor, full
   *  without); `unserved`: the service serves no report of a monitored conference. */
  state: 'matches' | 'differs' | 'overdue' | 'unserved';
}

/** Every settled conference's evidence checked against the chain's event: the records come from the
 *  monitor's report for terms that name a monitor (the report of that chain session), from the
 *  operator's probes otherwise (those of the service's session measured over the same period, else all
 *  of the agreement's, which `measure` narrows to the period's slots). Mismatches name the conference. */
export function checkEvidence(ag: LedgerAgreement, terms: ChainTerms, view: ProbesView): { checks: EvidenceCheck[]; mismatches: Mismatch[] } {
  const checks: EvidenceCheck[] = [];
  const mismatches: Mismatch[] = [];
  const monitored = terms.monitor.toLowerCase() !== zeroAddress;
  ag.sessions.forEach((s, i) => {
    if (s.availabilityBps === null || s.evidence === null) return;
    const period = s.startedAt !== null && s.endedAt !== null ? { from: s.startedAt, to: s.endedAt } : ag.window;
    if (!period) return;
    const session = i + 1;
    const base = { session, by: monitored ? 'monitor' : 'operator', ...period, evidence: s.evidence, availabilityBps: s.availabilityBps } as const;
    if (s.evidence.toLowerCase() === NO_EVIDENCE) {
      // settleOverdue: no report in time is nothing available with a monitor; without one, the operator
      // that alone reports let its window pass, and the contract counts full availability.
      const rule = monitored ? 0 : 10_000;
      checks.push({ ...base, recomputed: null, state: 'overdue' });
      if (s.availabilityBps !== rule) mismatches.push({ figure: 'measured', source: 'chain', expected: String(rule), shown: String(s.availabilityBps), session });
      return;
    }
    let interval: number;
    let records: EvidenceRecord[];
    if (monitored) {
      const report = view.reports.find((r) => r.session === session);
      if (!report) {
        checks.push({ ...base, recomputed: null, state: 'unserved' });
        mismatches.push({ figure: 'evidence', source: 'records', expected: s.evidence, shown: 'no report served', session });
        return;
      }
      interval = report.intervalMs;
      records = report.records;
    } else {
      const same = view.sessions.find((p) => p.measurement && p.measurement.from === period.from && p.measurement.to === period.to);
      interval = same?.measurement?.intervalMs ?? view.probeIntervalMs;
      records = (same ? [same] : view.sessions).flatMap((p) => p.probes);
    }
    const m = measure(period.from, period.to, interval, records);
    const evidenceOk = m.evidence.toLowerCase() === s.evidence.toLowerCase();
    const figureOk = m.availabilityBps === s.availabilityBps;
    checks.push({ ...base, recomputed: m, state: evidenceOk && figureOk ? 'matches' : 'differs' });
    if (!evidenceOk) mismatches.push({ figure: 'evidence', source: 'records', expected: s.evidence, shown: m.evidence, session });
    if (!figureOk) mismatches.push({ figure: 'measured', source: 'records', expected: String(s.availabilityBps), shown: String(m.availabilityBps), session });
  });
  return { checks, mismatches };
}

/** Seconds the agreement's conferences ran, summed. */
export function usedSeconds(ag: LedgerAgreement): number {
  return ag.sessions.reduce((sum, s) => sum + (s.startedAt !== null && s.endedAt !== null ? s.endedAt - s.startedAt : 0), 0);
}

// ---------------------------------------------------------------------------------------------
// Income: each charge split among the providers of the terms it was signed under.
// ---------------------------------------------------------------------------------------------

export interface IncomeLine {
  agreementId: number;
  termsId: number;
  offerId: number;
  tokenId: number;
  charge: bigint;
  amount: bigint;
  settleTx: `0x${string}` | null;
}

/** Provider `providerId`'s part of every settled charge, one line per settlement. */
export function incomeOf(ledger: Ledger, providerId: number): IncomeLine[] {
  const lines: IncomeLine[] = [];
  for (const ag of [...ledger.agreements].sort((x, y) => x.id - y.id)) {
    const terms = ledger.terms.get(ag.termsId);
    if (!terms) continue;
    for (const s of ag.sessions) {
      if (s.charge === null) continue;
      const part = splitCharge(s.charge, terms).parts.find((p) => p.providerId === providerId);
      if (part) lines.push({ agreementId: ag.id, termsId: ag.termsId, offerId: ag.offerId, tokenId: ag.tokenId, charge: s.charge, amount: part.amount, settleTx: s.settleTx });
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// CSV.
// ---------------------------------------------------------------------------------------------

function csvField(value: string | number | bigint | boolean | null): string {
  const text = value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const CSV_COLUMNS = [
  'agreementId', 'termsId', 'offerId', 'model', 'tokenId', 'customer', 'status', 'price', 'surchargeBps', 'deposit', 'sessions', 'usedSeconds',
  'availabilityBps', 'chargedOnChain', 'chargedRecomputed', 'chargedService', 'refundOnChain', 'refundRecomputed', 'refundService', 'mismatches',
] as const;

/** The audit table as CSV, every amount in the token's base units (exact integers). */
export function toCsv(ledger: Ledger, service: Map<number, AgreementSummary>): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const ag of ledger.agreements) {
    const summary = service.get(ag.id);
    const mismatches = [...ag.mismatches, ...serviceMismatches(ag, summary)];
    const last = [...ag.sessions].reverse().find((s) => s.availabilityBps !== null);
    rows.push([
      ag.id, ag.termsId, ag.offerId, ag.model, ag.tokenId, ag.customer, ag.status, ag.price, ag.surchargeBps, ag.deposit, ag.sessions.length, usedSeconds(ag),
      last?.availabilityBps ?? null, ag.charged, ag.expectedCharged, summary?.charged ?? null, ag.refund, ag.expectedRefund, summary?.refund ?? null,
      mismatches.map((m) => `${m.source} ${m.figure}: expected ${m.expected}, shown ${m.shown}`).join('; '),
    ].map(csvField).join(','));
  }
  return rows.join('\r\n') + '\r\n';
}

/** An offer as the book gives it (`offerOf`), typed: once opened, the shares, margin and minimum charge
 *  are its current terms version's. */
export interface ChainOffer {
  id: number;
  owner: `0x${string}`;
  status: 'none' | 'draft' | 'open' | 'retired';
  termsId: number;
  model: Model;
  tokenId: number;
  maxDuration: number;
  margin: bigint;
  minimumCharge: bigint;
  shares: Share[];
}

const OFFER_STATUSES: ChainOffer['status'][] = ['none', 'draft', 'open', 'retired'];

export async function readOffer(client: Reader, cfg: Config, offerId: number): Promise<ChainOffer> {
  const o = (await client.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerOf', args: [offerId] })) as {
    owner: `0x${string}`; status: number; termsId: number;
    params: { model: number; tokenId: number; maxDuration: number; margin: bigint; minimumCharge: bigint };
    shares: readonly { providerId: number; component: bigint }[];
  };
  return {
    id: offerId,
    owner: o.owner,
    status: OFFER_STATUSES[Number(o.status)],
    termsId: Number(o.termsId),
    model: MODELS[Number(o.params.model)],
    tokenId: Number(o.params.tokenId),
    maxDuration: Number(o.params.maxDuration),
    margin: BigInt(o.params.margin),
    minimumCharge: BigInt(o.params.minimumCharge),
    shares: o.shares.map((s) => ({ providerId: Number(s.providerId), component: BigInt(s.component) })),
  };
}
