import { TributaryError, type ErrorCode } from "../core/errors.js";

/**
 * The decider shape (STYLE §1): `decide(command, state)` answers with the events the command causes
 * (or a typed rejection), `evolve(state, event)` folds one event into the state. Both are pure:
 * time and ids arrive inside the command, nothing reads the clock or a random source, so a replay,
 * `tributary state --at-version N` and a given/when/then test all compute the same thing.
 *
 * The runtime (actors/runtime/) does the I/O around it: load state, decide, append the events with
 * the expected version (stamping `at` from the command), evolve, retry on a version conflict.
 */

/** An event as a decider produces it; the store adds version, offset, `at`, meta and the hash. */
export interface DecidedEvent<T extends string = string, D = unknown> {
  type: T;
  data: D;
}

/** Why a command was refused. `code` is a contract error code (CONTRACT §3). */
export interface Rejection {
  code: ErrorCode;
  message: string;
  details?: unknown;
  /** Seconds until a retry can succeed (QUOTA_EXCEEDED until the day resets, …). */
  retryAfter?: number;
}

/**
 * `events` may be empty: the command was accepted and changes nothing (an idempotent repeat, a
 * cancel with nothing running). The runtime answers a repeat from the state, not from new events.
 */
export type Decision<E> =
  | {
      ok: true;
      events: E[];
      /**
       * The state after folding `events` into the state that was decided on, when the decider had
       * to compute most of it anyway (a ledger folds its housekeeping events to decide the command).
       * Must equal `fold(events, state)`; the runtime then does not evolve the events a second time.
       */
      next?: unknown;
    }
  | { ok: false; rejection: Rejection };

export interface Decider<C, E extends DecidedEvent, S> {
  initialState(): S;
  decide(command: C, state: S): Decision<E>;
  evolve(state: S, event: E): S;
  /** Validate a command from the outside world (zod); throws TributaryError VALIDATION_FAILED. */
  parseCommand(input: unknown): C;
  /** Validate a stored event `{type, data}` before folding it; throws TributaryError (permanent). */
  parseEvent(raw: { type: string; data: unknown }): E;
  /** JSON-safe snapshot of the state (the runtime stores it in the blob store). */
  toSnapshot(state: S): unknown;
  /** Inverse of toSnapshot; throws TributaryError on a snapshot of the wrong shape. */
  fromSnapshot(json: unknown): S;
  /** Number of events folded into `state` (its stream version). */
  versionOf(state: S): number;
}

export function accept<E>(events: E[]): Decision<E> {
  return { ok: true, events };
}

export function reject<E>(code: ErrorCode, message: string, extra: { details?: unknown; retryAfter?: number } = {}): Decision<E> {
  const rejection: Rejection = { code, message };
  if (extra.details !== undefined) rejection.details = extra.details;
  if (extra.retryAfter !== undefined) rejection.retryAfter = extra.retryAfter;
  return { ok: false, rejection };
}

/** Fold events into a state, starting from `from` (a snapshot) or the initial state. */
export function fold<C, E extends DecidedEvent, S>(decider: Decider<C, E, S>, events: Iterable<E>, from?: S): S {
  let state = from ?? decider.initialState();
  for (const e of events) state = decider.evolve(state, e);
  return state;
}

/**
 * Decide and evolve in one step, as the runtime does after a successful append. Handy for tests,
 * `tributary state` and benchmarks.
 */
export function decideAndEvolve<C, E extends DecidedEvent, S>(
  decider: Decider<C, E, S>,
  command: C,
  state: S,
): { decision: Decision<E>; state: S } {
  const decision = decider.decide(command, state);
  return { decision, state: decision.ok ? fold(decider, decision.events, state) : state };
}

/** A rejection as the error the edge maps to an HTTP answer / acknowledgement. */
export function rejectionError(r: Rejection): TributaryError {
  const opts: { details?: unknown; retryAfter?: number } = {};
  if (r.details !== undefined) opts.details = r.details;
  if (r.retryAfter !== undefined) opts.retryAfter = r.retryAfter;
  return new TributaryError(r.code, r.message, opts);
}
