// The availability evidence recomputed in the page (backend/src/domain/availability.rs, the escrow's
// `AgreementSettled.evidence`): the figure a settlement carries and the commitment to the probe
// records behind it, from the records alone, so that a settlement can be checked against the records
// the service serves without trusting either the service's arithmetic or its records.
//
// The figure: the measured period [from, to) (unix seconds) is cut into slots of the probe interval,
// due = max(1, ⌊(to − from) · 1000 / interval⌋) of them from `from`; a slot counts when it holds a
// successful probe, a slot without one counts as down; the figure is ⌊10,000 · ok slots / due⌋ bps.
// The commitment: keccak256(interval as uint32 ‖ (atMs as uint64 ‖ ok as uint8) …), big-endian, over the
// records inside the slots in the order they were taken.
import { keccak256, type Hex } from 'viem';

/** One probe record: when it was taken (the chain's clock, milliseconds) and whether it succeeded. */
export interface EvidenceRecord {
  atMs: number;
  ok: boolean;
}

/** A period's figure and the commitment to the records behind it. */
export interface Measured {
  intervalMs: number;
  due: number;
  okSlots: number;
  availabilityBps: number;
  /** The records inside the slots, in the order taken: what `evidence` commits to. */
  records: EvidenceRecord[];
  evidence: Hex;
}

/** What a settlement without evidence emits (an overdue settlement: nobody reported in time). */
export const NO_EVIDENCE: Hex = `0x${'0'.repeat(64)}`;

const MAX_INTERVAL_MS = 2 ** 32 - 1;

/** The commitment to `records` taken once per `intervalMs`: nine bytes a record after the interval. */
export function commitment(intervalMs: number, records: readonly EvidenceRecord[]): Hex {
  const bytes = new Uint8Array(4 + 9 * records.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.min(intervalMs, MAX_INTERVAL_MS));
  records.forEach((record, i) => {
    view.setBigUint64(4 + 9 * i, BigInt(record.atMs));
    view.setUint8(12 + 9 * i, record.ok ? 1 : 0);
  });
  return keccak256(bytes);
}

/** The figure of [from, to) (unix seconds) from `probes` (any order, any period), probed once per
 *  `intervalMs`. Integers throughout: every product stays far below 2^53. */
export function measure(from: number, to: number, intervalMs: number, probes: readonly EvidenceRecord[]): Measured {
  const interval = Math.min(Math.max(intervalMs, 1), MAX_INTERVAL_MS);
  const due = Math.max(1, Math.floor((Math.max(0, to - from) * 1000) / interval));
  const startMs = from * 1000;
  const endMs = startMs + due * interval;
  const records = probes.filter((r) => r.atMs >= startMs && r.atMs < endMs).map((r) => ({ atMs: r.atMs, ok: r.ok }));
  const okSlots = new Set(records.filter((r) => r.ok).map((r) => Math.floor((r.atMs - startMs) / interval))).size;
  return { intervalMs: interval, due, okSlots, availabilityBps: Math.floor((okSlots * 10_000) / due), records, evidence: commitment(interval, records) };
}

/** The examples the backend's own tests hold (availability.rs), run in the page like pricing.ts's
 *  `selfCheck`: the failures, none when the page computes as the backend and the contract document. */
export function evidenceSelfCheck(): string[] {
  const failures: string[] = [];
  const expect = (what: string, got: unknown, want: unknown) => {
    if (got !== want) failures.push(`${what}: got ${String(got)}, expected ${String(want)}`);
  };
  // interval 1000 = 0x000003e8; record (0x010203040506, ok) = 00 00 01..06 01 (a time in ms stays below
  // 2^53, where JSON's numbers are exact).
  expect('commitment', commitment(1000, [{ atMs: 0x010203040506, ok: true }]), keccak256(new Uint8Array([0, 0, 3, 0xe8, 0, 0, 1, 2, 3, 4, 5, 6, 1])));
  expect('commitment of a failed probe', commitment(1000, [{ atMs: 0x010203040506, ok: false }]), keccak256(new Uint8Array([0, 0, 3, 0xe8, 0, 0, 1, 2, 3, 4, 5, 6, 0])));
  expect('commitment of no record', commitment(1000, []), keccak256(new Uint8Array([0, 0, 3, 0xe8])));
  // Ten slots of 1 s: slots 0–5 and 8 hold a successful probe, 7 a failed one, 6 and 9 none.
  const probes = [...Array.from({ length: 6 }, (_, k) => ({ atMs: 100_000 + k * 1000 + 10, ok: true })), { atMs: 107_500, ok: false }, { atMs: 108_200, ok: true }];
  const m = measure(100, 110, 1000, probes);
  expect('slots due', m.due, 10);
  expect('slots with a successful probe', m.okSlots, 7);
  expect('availability', m.availabilityBps, 7000);
  expect('nothing measured', measure(100, 110, 1000, []).availabilityBps, 0);
  expect('shorter than one interval', measure(100, 100, 1000, []).due, 1);
  const edges = measure(100, 102, 1000, [{ atMs: 99_999, ok: true }, { atMs: 100_000, ok: true }, { atMs: 100_400, ok: true }, { atMs: 102_000, ok: true }]);
  expect('a second probe in a slot counts once', edges.availabilityBps, 5000);
  expect('only the slots’ records are committed', edges.records.length, 2);
  return failures;
}
