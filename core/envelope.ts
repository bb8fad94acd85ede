import type { StreamRef } from "./keys.js";

/**
 * What an event looks like at rest and on the wire.
 *
 * `StoredEvent` is the record msgpackr encodes into a stream entry (field `e`); its encoded bytes are
 * the canonical form the hash chain covers (see chain.ts). `s` is the schema version of the record so
 * that old entries can be upcast when the shape changes.
 */
export const CURRENT_SCHEMA = 1;

export interface EventMeta {
  /** The command that produced the event (dedupe key, causation). */
  commandId?: string;
  /** Who caused it, for audit trails. */
  userId?: string;
  tenantId?: string;
  requestId?: string;
}

export interface StoredEvent {
  s: number;
  type: string;
  version: number;
  at: string;
  data: unknown;
  meta?: EventMeta;
}

/** An event a decider produced, not yet appended: the store assigns version, offset and hash. */
export interface NewEvent {
  type: string;
  data: unknown;
  /** ISO-8601; comes in with the command so deciders stay deterministic. */
  at: string;
  meta?: EventMeta;
}

/** An event read back from a stream. */
export interface RecordedEvent {
  stream: StreamRef;
  /** Redis stream entry id in the aggregate stream, e.g. "1732212345678-0". */
  offset: string;
  version: number;
  type: string;
  at: string;
  data: unknown;
  meta?: EventMeta;
  /** sha256 chain value after this event (hex). */
  hash: string;
}

/** CONTRACT §4: the one envelope every client sees. */
export interface Envelope {
  conversationId: string;
  offset: string;
  version: number;
  type: string;
  at: string;
  data: unknown;
}

export function toEnvelope(e: RecordedEvent): Envelope {
  return { conversationId: e.stream.id, offset: e.offset, version: e.version, type: e.type, at: e.at, data: e.data };
}

/**
 * Compare two stream entry ids ("ms-seq") numerically; -1, 0 or 1. "0" sorts first; a missing or
 * empty part counts as 0. Inputs are stream ids or offsets that passed `isOffset`.
 *
 * Hot path: the fan-out compares offsets for every event it publishes, so this allocates nothing
 * and parses no BigInt (issue 5). Two ids of the same shape (same length, "-" at the same place —
 * the usual case: ids of one stream written in the same era) compare as text, which for digit
 * strings of equal length is their numeric order. Other valid ids are compared digit by digit
 * (strip leading zeros; the longer number is larger, else the first differing digit decides),
 * exact at any length — Redis's seq part goes up to 2^64-1, beyond a safe JS integer. Input that is
 * not digits with at most one "-" goes to the BigInt parse as before (and throws where it threw),
 * except that two such strings of the same shape compare as text.
 */
export function compareOffsets(a: string, b: string): number {
  if (a.length === b.length && a.indexOf("-") === b.indexOf("-")) return a < b ? -1 : a > b ? 1 : 0;
  const da = dashIndex(a);
  const db = dashIndex(b);
  if (da === INVALID || db === INVALID) return compareOffsetsBig(a, b);
  const ms = compareDecimal(a, 0, da, b, 0, db);
  if (ms !== 0) return ms;
  // No "-": the seq part is empty (0).
  return compareDecimal(a, Math.min(da + 1, a.length), a.length, b, Math.min(db + 1, b.length), b.length);
}

const INVALID = -2;

/** Index of the "-" (the length when there is none); INVALID unless `s` is digits with at most one "-". */
function dashIndex(s: string): number {
  let dash = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) continue;
    if (c === 45 && dash < 0) {
      dash = i;
      continue;
    }
    return INVALID;
  }
  return dash < 0 ? s.length : dash;
}

/** Compare the decimal numbers a[as, ae) and b[bs, be) (digits only; empty = 0). */
function compareDecimal(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  while (as < ae && a.charCodeAt(as) === 48) as++;
  while (bs < be && b.charCodeAt(bs) === 48) bs++;
  const la = ae - as;
  const lb = be - bs;
  if (la !== lb) return la < lb ? -1 : 1;
  for (let i = 0; i < la; i++) {
    const x = a.charCodeAt(as + i);
    const y = b.charCodeAt(bs + i);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The reference comparison (BigInt parse of both parts): the fallback for input that is not plain digits. */
export function compareOffsetsBig(a: string, b: string): number {
  const [am = "0", as = "0"] = a.split("-");
  const [bm = "0", bs = "0"] = b.split("-");
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

const OFFSET_RE = /^\d{1,20}(-\d{1,20})?$/;
export function isOffset(s: string): boolean {
  return OFFSET_RE.test(s);
}

/**
 * The millisecond part of a stream id ("<ms>-<seq>"), 0 if there is none: the append time (the
 * append script takes it from Redis's TIME), read without a slice or a parse because the edge does
 * it once per live event.
 */
export function offsetMillis(offset: string): number {
  let ms = 0;
  for (let i = 0; i < offset.length; i++) {
    const c = offset.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    ms = ms * 10 + c;
  }
  return ms;
}
