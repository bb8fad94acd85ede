import { createActor, type AnyActorScope, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from "xstate";
import type { z } from "zod";
import { TributaryError, type ErrorCode } from "../core/errors.js";
import type { DecidedEvent, Decision, Rejection } from "./decider.js";
import { planOf } from "./machine-plan.js";

/**
 * The bridge from an XState v5 machine to a decider (STYLE §2: XState plans, the runtime acts).
 *
 * Each machine takes two kinds of events:
 * - commands (`cmd.<name>`, carrying `cmd`): guarded transitions that never change the snapshot;
 *   their actions are data — `xstate.emit` (one event) and `emitAll` (a computed list) actions carry
 *   the domain events to append, a `reject`
 *   action carries a Rejection. `transition()` returns them without running anything.
 * - domain events (`<aggregate>.<fact>`, carrying `data`): `assign` the context and move between
 *   states. This is `evolve`.
 *
 * So the states and guards of the machine are the rules. Decide and evolve read them from the
 * machine's transition table (machine-plan.ts, machine-evolve.ts) and fall back to xstate's pure
 * `transition()` for any shape the table does not cover; no actor is ever started.
 */
export const REJECT_ACTION = "reject";

/**
 * xstate's `transition(machine, snapshot, event)`, with its inert actor scope made once per machine
 * instead of per call. `transition()` builds a throw-away actor for every call — which computes the
 * machine's initial state and a fresh actor system each time, most of its cost — only to collect
 * the actions instead of running them. The scope below is the same inert scope (nothing is
 * deferred, emitted, logged or started); only `actionExecutor` changes per call, and calls are
 * synchronous, so reusing it keeps `transition()`'s semantics exactly.
 */
const scopes = new WeakMap<AnyStateMachine, AnyActorScope>();

function inertScope(machine: AnyStateMachine): AnyActorScope {
  let scope = scopes.get(machine);
  if (!scope) {
    const self = createActor(machine);
    scope = {
      self,
      defer: () => {},
      id: "",
      logger: () => {},
      sessionId: "",
      stopChild: () => {},
      system: self.system,
      emit: () => {},
      actionExecutor: () => {},
    } as unknown as AnyActorScope;
    scopes.set(machine, scope);
  }
  return scope;
}

export function transition(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: EventObject): [AnyMachineSnapshot, Array<{ type: string; params?: unknown }>] {
  const actions: Array<{ type: string; params?: unknown }> = [];
  const scope = inertScope(machine);
  scope.actionExecutor = (a: { type: string; params?: unknown }) => {
    actions.push(a);
  };
  try {
    return [machine.transition(snapshot, event, scope), actions];
  } finally {
    scope.actionExecutor = () => {};
  }
}
/** A planned action carrying a computed list of events (when how many depends on the state). */
export const EMIT_ALL_ACTION = "emitAll";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function asDecidedEvent(v: unknown): DecidedEvent | undefined {
  if (!isRecord(v) || typeof v.type !== "string" || !("data" in v)) return undefined;
  return { type: v.type, data: v.data };
}

function asRejection(v: unknown): Rejection | undefined {
  if (!isRecord(v) || typeof v.code !== "string" || typeof v.message !== "string") return undefined;
  const r: Rejection = { code: v.code as ErrorCode, message: v.message };
  if (v.details !== undefined) r.details = v.details;
  if (typeof v.retryAfter === "number") r.retryAfter = v.retryAfter;
  return r;
}

/**
 * Decide a command: its planned actions, read from the machine's transition table (machine-plan.ts)
 * or, where the table does not answer, from xstate's `transition()`.
 */
export function decideWith<E extends DecidedEvent>(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
  commandEvent: EventObject,
): Decision<E> {
  const planned = planOf(machine, snapshot, commandEvent);
  return planned === undefined ? decideWithInterpreter<E>(machine, snapshot, commandEvent) : decisionOf<E>(machine, planned);
}

/** `decideWith` through xstate's interpreter always (the reference the table is tested against). */
export function decideWithInterpreter<E extends DecidedEvent>(
  machine: AnyStateMachine,
  snapshot: AnyMachineSnapshot,
  commandEvent: EventObject,
): Decision<E> {
  const [next, actions] = transition(machine, snapshot, commandEvent);
  // A command handler that assigned would make decide impure with respect to the log: state may
  // only change through events. Fail loudly in that case (a bug in the machine, not in the input).
  if (next.context !== snapshot.context || (next.value !== snapshot.value && JSON.stringify(next.value) !== JSON.stringify(snapshot.value))) {
    throw new Error(`machine ${machine.id}: command ${String(commandEvent.type)} changed the state; commands must only emit`);
  }
  return decisionOf<E>(machine, actions);
}

/** The decision a command's planned actions carry: a rejection, or the emitted events in order. */
function decisionOf<E extends DecidedEvent>(machine: AnyStateMachine, actions: Array<{ type: string; params?: unknown }>): Decision<E> {
  const events: E[] = [];
  for (const a of actions) {
    if (a.type === REJECT_ACTION) {
      const r = asRejection(a.params);
      if (!r) throw new Error(`machine ${machine.id}: malformed rejection`);
      return { ok: false, rejection: r };
    }
    if (a.type === "xstate.emit") {
      const e = asDecidedEvent(isRecord(a.params) ? a.params.event : undefined);
      if (!e) throw new Error(`machine ${machine.id}: malformed emitted event`);
      events.push(e as E);
    }
    if (a.type === EMIT_ALL_ACTION) {
      const list = isRecord(a.params) ? a.params.events : undefined;
      if (!Array.isArray(list)) throw new Error(`machine ${machine.id}: malformed emitAll`);
      for (const item of list) {
        const e = asDecidedEvent(item);
        if (!e) throw new Error(`machine ${machine.id}: malformed emitted event`);
        events.push(e as E);
      }
    }
  }
  return { ok: true, events };
}

/**
 * Fold one domain event. Every domain event handler bumps `context.version`, so an event the
 * machine did not handle leaves the snapshot untouched: that is a stream this code cannot read, and
 * folding on would give a wrong state — refuse it as a permanent error.
 */
export function evolveWith<S extends AnyMachineSnapshot>(machine: AnyStateMachine, snapshot: S, event: EventObject): S {
  const next = transition(machine, snapshot, event)[0] as S;
  if (next === snapshot || next.context === snapshot.context) {
    throw new TributaryError("BAD_REQUEST", `${machine.id}: event ${String(event.type)} cannot be applied in state ${JSON.stringify(snapshot.value)}`, {
      permanent: true,
    });
  }
  return next;
}

/**
 * Restore a persisted snapshot: validate it with the aggregate's schema, then resolve the machine
 * state from the *input* object rather than zod's output — zod rebuilds records by assignment, which
 * would turn an own "__proto__" key (a legal clientMessageId) into a prototype change and lose it.
 */
export function restoreWith<S extends AnyMachineSnapshot>(
  machine: AnyStateMachine,
  schema: z.ZodType<{ value: string; context: object }>,
  json: unknown,
  name: string,
): S {
  const r = schema.safeParse(json);
  if (!r.success) throw new TributaryError("BAD_REQUEST", `malformed ${name} snapshot`, { details: r.error.issues, permanent: true });
  const raw = json as { value: string; context: Record<string, unknown> };
  return machine.resolveState({ value: r.data.value, context: raw.context }) as S;
}
