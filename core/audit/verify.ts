import { GENESIS_HASH, chainHash } from "../chain.js";
import { decodeEvent } from "../codec.js";
import { compareOffsets } from "../envelope.js";
import { errorMessage } from "../errors.js";
import type { StreamHead } from "../event-store.js";
import type { StoredEntry } from "./entry.js";

/**
 * Pure verification of a stream's stored entries (I2): versions run 1, 2, 3… without gaps, offsets
 * strictly increase, and every stored hash equals sha256(previous hash ‖ stored bytes). Because the
 * chain covers the stored bytes, changing any byte of `e` or `h` breaks it exactly at that entry.
 */
export interface ChainState {
  /** Version of the last verified entry (0 before the first). */
  version: number;
  /** Chain value after it (GENESIS_HASH before the first). */
  hash: string;
  offset: string | null;
}

export const GENESIS_STATE: ChainState = { version: 0, hash: GENESIS_HASH, offset: null };

export type AuditBreakKind = "undecodable" | "version-gap" | "offset-order" | "hash-mismatch" | "head-mismatch";

export interface AuditBreak {
  /** Stream key, e.g. `{p3}:es:conversation:abc`. */
  stream: string;
  /** The version the broken entry should have had (its position in the chain). */
  version: number;
  /** The broken entry's offset; null when the break is an entry that is missing at the end. */
  offset: string | null;
  kind: AuditBreakKind;
  reason: string;
}

export type StepResult = { ok: true; state: ChainState } | { ok: false; break: AuditBreak };

/** Check one entry against the state after its predecessor. */
export function verifyStep(stream: string, state: ChainState, entry: StoredEntry): StepResult {
  const version = state.version + 1;
  const fail = (kind: AuditBreakKind, reason: string): StepResult => ({ ok: false, break: { stream, version, offset: entry.offset, kind, reason } });
  if (state.offset !== null && compareOffsets(entry.offset, state.offset) <= 0) {
    return fail("offset-order", `offset ${entry.offset} is not after the previous offset ${state.offset}`);
  }
  let decodedVersion: number;
  try {
    decodedVersion = decodeEvent(entry.bytes).version;
  } catch (e) {
    return fail("undecodable", `stored event cannot be decoded: ${errorMessage(e)}`);
  }
  if (decodedVersion !== version) {
    return fail(
      "version-gap",
      state.version === 0 && decodedVersion > 1
        ? `history starts at version ${decodedVersion}, not 1 (trimmed from Redis and no archive given?)`
        : `expected version ${version}, found ${decodedVersion}`,
    );
  }
  const expected = chainHash(state.hash, entry.bytes);
  if (expected !== entry.hash) {
    return fail("hash-mismatch", `stored hash ${short(entry.hash)} ≠ sha256(previous ‖ event) ${short(expected)}`);
  }
  return { ok: true, state: { version, hash: expected, offset: entry.offset } };
}

const short = (h: string): string => (h.length > 16 ? `${h.slice(0, 12)}…` : JSON.stringify(h));

export interface StreamAuditResult {
  stream: string;
  /** Entries verified before the break (or all of them). */
  events: number;
  state: ChainState;
  break?: AuditBreak;
}

/**
 * Compare the stream's head record (meta hash) with the verified chain. Pass the head read BEFORE
 * walking the stream: entries appended during the walk then only extend it, never fail it.
 */
function checkHead(stream: string, head: StreamHead, at: ChainState): AuditBreak | undefined {
  if (at.hash !== head.hash || at.offset !== head.lastOffset) {
    return {
      stream,
      version: head.version,
      offset: at.offset,
      kind: "head-mismatch",
      reason: `head record (version ${head.version}, hash ${short(head.hash)}, offset ${head.lastOffset ?? "none"}) does not match the chain (hash ${short(at.hash)}, offset ${at.offset ?? "none"})`,
    };
  }
  return undefined;
}

/** Walk entries (oldest first), stopping at the first break. */
export async function verifyStream(
  stream: string,
  entries: AsyncIterable<StoredEntry> | Iterable<StoredEntry>,
  opts: { start?: ChainState; head?: StreamHead } = {},
): Promise<StreamAuditResult> {
  let state = opts.start ?? GENESIS_STATE;
  let events = 0;
  const head = opts.head;
  let headChecked = head === undefined || head.version < state.version;
  if (head !== undefined && head.version === state.version) {
    const b = checkHead(stream, head, state);
    if (b) return { stream, events, state, break: b };
    headChecked = true;
  }
  for await (const entry of entries) {
    const step = verifyStep(stream, state, entry);
    if (!step.ok) return { stream, events, state, break: step.break };
    state = step.state;
    events += 1;
    if (!headChecked && head !== undefined && state.version === head.version) {
      const b = checkHead(stream, head, state);
      if (b) return { stream, events, state, break: b };
      headChecked = true;
    }
  }
  if (!headChecked && head !== undefined) {
    return {
      stream,
      events,
      state,
      break: {
        stream,
        version: state.version + 1,
        offset: null,
        kind: "head-mismatch",
        reason: `head record says version ${head.version} but the stream ends at version ${state.version}`,
      },
    };
  }
  return { stream, events, state };
}

/** One line naming the break, for the CLI and logs. */
export function describeBreak(b: AuditBreak): string {
  return `stream ${b.stream}, version ${b.version}, offset ${b.offset ?? "(missing)"}: ${b.reason}`;
}
