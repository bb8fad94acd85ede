import { decodeEvent } from "../core/codec.js";
import type { AggregateKind, StreamRef } from "../core/keys.js";
import type { DecidedEvent, Decider } from "./decider.js";
import { conversationDecider } from "./conversation/index.js";
import { budgetDecider, ledgerDecider } from "./ledger/decider.js";
import { sessionDecider } from "./session/index.js";

/**
 * Time travel (DESIGN §Actors): an aggregate's state after event N, or after the last event at or
 * before an instant, folded through the same pure decider the runtime uses — so the answer is exactly
 * what the actor believed then. Shared by `tributary state` and `GET /v1/conversations/:id/state`,
 * so the CLI and the HTTP route can never disagree.
 */
type AnyDecider = Decider<unknown, DecidedEvent, { value: unknown; context: unknown }>;

function deciderFor(kind: AggregateKind, id: string): AnyDecider {
  if (kind === "conversation") return conversationDecider as unknown as AnyDecider;
  if (kind === "session") return sessionDecider as unknown as AnyDecider;
  return (id.startsWith("project:") ? budgetDecider : ledgerDecider) as unknown as AnyDecider;
}

export interface FoldedState {
  kind: AggregateKind;
  id: string;
  /** Version of the last event folded (0 = none). */
  version: number;
  offset: string | null;
  at: string | null;
  status: unknown;
  context: unknown;
}

export interface FoldLimit {
  /** Fold only events with version ≤ atVersion. */
  atVersion?: number;
  /** Fold only events at or before this ISO-8601 instant. */
  at?: string;
}

/** Fold a stream's stored entries (oldest first) up to a version or an instant. */
export async function foldState(
  entries: AsyncIterable<{ offset: string; bytes: Uint8Array }>,
  ref: StreamRef,
  limit: FoldLimit,
): Promise<FoldedState> {
  const decider = deciderFor(ref.kind, ref.id);
  let state = decider.initialState();
  let version = 0;
  let offset: string | null = null;
  let at: string | null = null;
  const until = limit.at === undefined ? undefined : Date.parse(limit.at);
  for await (const entry of entries) {
    const rec = decodeEvent(entry.bytes);
    if (limit.atVersion !== undefined && rec.version > limit.atVersion) break;
    if (until !== undefined && Date.parse(rec.at) > until) break;
    state = decider.evolve(state, decider.parseEvent({ type: rec.type, data: rec.data }));
    version = rec.version;
    offset = entry.offset;
    at = rec.at;
  }
  return { kind: ref.kind, id: ref.id, version, offset, at, status: state.value, context: state.context };
}
