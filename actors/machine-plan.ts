import { createActor, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from "xstate";

/**
 * The actions a command plans, read from the machine's own transition table without running the
 * interpreter (the decide side of machine-evolve.ts).
 *
 * A command (`cmd.*`) never changes the snapshot (machine-decider.ts): its transition has no target
 * and no assign, only inline guards and actions that are data — `emit(...)` and named actions with
 * params (`reject`, `emitAll`). For such a machine, `machine.transition(snapshot, command)` selects
 * the first candidate, in the order xstate tries them (the active atomic state's handlers for that
 * event type, then the root's), whose guard passes, and hands its actions to the action executor
 * with their params resolved. That is what `planOf` does, once per (state, event type) table built
 * at first use. Anything else — a non-inline or higher-order guard, a target, an assign or any
 * other builtin action, nested/parallel states, wildcards, entry/exit or eventless transitions —
 * is left to the interpreter: `planOf` answers undefined and the caller runs `machine.transition`.
 * test/actors/machine-evolve.unit.spec.ts proves the decisions equal for random command sequences.
 */
export interface PlannedAction {
  type: string;
  params?: unknown;
}

type Args = { context: unknown; event: EventObject; self: unknown; system: unknown };
type Resolve = (args: Args) => PlannedAction;
type Guard = (args: { context: unknown; event: EventObject }, params: undefined) => boolean;
interface Candidate {
  guard: Guard | undefined;
  actions: Resolve[];
}

interface NodeLike {
  key: string;
  type: string;
  states: Record<string, NodeLike>;
  entry: unknown[];
  exit: unknown[];
  always?: unknown[];
  after: unknown[];
  invoke: unknown[];
  transitions: Map<string, Array<{ guard?: unknown; actions: unknown[]; target?: unknown[]; reenter?: boolean }>>;
}

interface Plan {
  /** `${state}\u0000${eventType}` → candidates in xstate's order, or null: left to the interpreter. */
  table: Map<string, Candidate[] | null>;
  self: unknown;
  system: unknown;
  ok: boolean;
}

const plans = new WeakMap<AnyStateMachine, Plan>();

function resolverOf(machine: AnyStateMachine, action: unknown): Resolve | undefined {
  if (typeof action === "function") {
    const a = action as { type?: unknown; event?: unknown; resolve?: unknown };
    if (a.type !== "xstate.emit" || !("event" in a)) return undefined; // assign, raise, …: interpreter
    const ev = a.event;
    // xstate's resolveEmit: an expression gets the action args and no params.
    return typeof ev === "function"
      ? (args) => ({ type: "xstate.emit", params: { event: (ev as (x: Args, p: undefined) => unknown)(args, undefined) } })
      : () => ({ type: "xstate.emit", params: { event: ev } });
  }
  if (typeof action !== "object" || action === null) return undefined;
  const { type, params } = action as { type?: unknown; params?: unknown };
  if (typeof type !== "string") return undefined;
  const impl = (machine.implementations.actions as Record<string, unknown>)[type];
  // A named builtin (one with `resolve`) would change the snapshot or spawn: interpreter.
  if (impl !== undefined && (typeof impl !== "function" || "resolve" in impl)) return undefined;
  // A custom action reaches the executor as { type, params }; params resolved against the snapshot.
  if (!("params" in action)) return () => ({ type, params: undefined });
  return typeof params === "function"
    ? (args) => ({ type, params: (params as (x: { context: unknown; event: EventObject }) => unknown)({ context: args.context, event: args.event }) })
    : () => ({ type, params });
}

function candidatesOf(machine: AnyStateMachine, list: Array<{ guard?: unknown; actions: unknown[]; target?: unknown[]; reenter?: boolean }>): Candidate[] | null {
  const out: Candidate[] = [];
  for (const t of list) {
    if ((t.target !== undefined && t.target.length > 0) || t.reenter) return null;
    const g = t.guard;
    if (g !== undefined && (typeof g !== "function" || "check" in g)) return null;
    const actions: Resolve[] = [];
    for (const a of t.actions) {
      const r = resolverOf(machine, a);
      if (r === undefined) return null;
      actions.push(r);
    }
    out.push({ guard: g as Guard | undefined, actions });
  }
  return out;
}

function planFor(machine: AnyStateMachine): Plan {
  let plan = plans.get(machine);
  if (plan) return plan;
  const self = createActor(machine);
  plan = { table: new Map(), self, system: self.system, ok: false };
  plans.set(machine, plan);
  const root = machine.root as unknown as NodeLike;
  const children = Object.values(root.states);
  const plain = (n: NodeLike) =>
    n.entry.length === 0 && n.exit.length === 0 && (n.always?.length ?? 0) === 0 && n.after.length === 0 && n.invoke.length === 0;
  if (root.type !== "compound" || !plain(root) || !children.every((c) => c.type === "atomic" && plain(c))) return plan;
  if ([root, ...children].some((n) => [...n.transitions.keys()].some((k) => k.includes("*")))) return plan;
  const types = new Set([root, ...children].flatMap((n) => [...n.transitions.keys()]));
  for (const c of children) {
    for (const type of types) {
      // xstate asks the active atomic state first and falls back to its parent (the root).
      const list = [...(c.transitions.get(type) ?? []), ...(root.transitions.get(type) ?? [])];
      plan.table.set(`${c.key}\u0000${type}`, candidatesOf(machine, list));
    }
  }
  plan.ok = true;
  return plan;
}

/**
 * The planned actions of `event` in `snapshot`, or undefined when the interpreter must answer
 * (an event no state handles, a shape the table does not cover, a snapshot that is not active).
 */
export function planOf(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: EventObject): PlannedAction[] | undefined {
  const plan = planFor(machine);
  if (!plan.ok || snapshot.status !== "active" || typeof snapshot.value !== "string") return undefined;
  const candidates = plan.table.get(`${snapshot.value}\u0000${event.type}`);
  if (!candidates) return undefined;
  const context = snapshot.context as unknown;
  for (const c of candidates) {
    if (c.guard !== undefined && !c.guard({ context, event }, undefined)) continue;
    const args: Args = { context, event, self: plan.self, system: plan.system };
    return c.actions.map((r) => r(args));
  }
  return [];
}

/** Which (state, event type) pairs the table answers, for tests. */
export function plannedPairs(machine: AnyStateMachine): string[] {
  return [...planFor(machine).table].filter(([, v]) => v !== null).map(([k]) => k.replace("\u0000", " "));
}
