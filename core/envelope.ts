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

/** Compare two stream entry ids ("ms-seq") numerically; -1, 0 or 1. "0" sorts first. */
export function compareOffsets(a: string, b: string): number {
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
