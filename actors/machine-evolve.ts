import { createActor, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from "xstate";
import { evolveWith } from "./machine-decider.js";

/**
 * `evolve` without running the XState interpreter, derived once from the machine definition.
 *
 * Every aggregate machine folds its domain events the same way (machine-decider.ts): a root-level
 * transition with no guard whose actions are inline `assign`s, optionally targeting one of the
 * root's flat, atomic states. Interpreting such a transition (`machine.transition`: transition
 * selection, exit/entry sets, microstep, action resolution, snapshot cloning) costs ~10 µs, while
 * what it computes is `{ value: target ?? value, context: {...context, ...assignment(context, event)} }`.
 *
 * So at module load we read the machine's own transition table and keep, per event type, the
 * target state and the assignment functions — the machine stays the single source of truth, this
 * only skips the interpreter. Anything the shortcut cannot reproduce exactly (a guard, a non-assign
 * action, a state overriding the root's handler, entry/exit actions, eventless or delayed
 * transitions, nested or parallel states, wildcards) is left to the machine: such an event type is
 * simply not in the table and folds through `evolveWith`. The property tests in
 * test/actors/machine-evolve.unit.spec.ts prove the two folds equal for random command sequences.
 */
type Assignment = (args: { context: object; event: EventObject; self: unknown; system: unknown; spawn: unknown }, params: unknown) => object;

interface Step {
  /** The state the event moves to; undefined: stays where it is. */
  target: AnyMachineSnapshot | undefined;
  assignments: Assignment[];
}

interface StateNodeLike {
  key: string;
  type: string;
  parent?: StateNodeLike;
  states: Record<string, StateNodeLike>;
  entry: unknown[];
  exit: unknown[];
  always?: unknown[];
  after: unknown[];
  invoke: unknown[];
  transitions: Map<string, Array<{ guard?: unknown; actions: unknown[]; target?: StateNodeLike[]; reenter?: boolean }>>;
}

function isInlineAssign(a: unknown): a is { assignment: Assignment | Record<string, unknown> } {
  return typeof a === "function" && (a as { type?: unknown }).type === "xstate.assign" && "assignment" in a;
}

/** Per event type, how it folds; empty when the machine's shape is not one the shortcut covers. */
function deriveTable(machine: AnyStateMachine): Map<string, Step> {
  const table = new Map<string, Step>();
  const root = machine.root as unknown as StateNodeLike;
  const children = Object.values(root.states);
  const plain = (n: StateNodeLike) =>
    n.entry.length === 0 && n.exit.length === 0 && (n.always?.length ?? 0) === 0 && n.after.length === 0 && n.invoke.length === 0;
  if (root.type !== "compound" || !plain(root)) return table;
  if (!children.every((c) => c.type === "atomic" && plain(c))) return table;
  const allKeys = [root, ...children].flatMap((n) => [...n.transitions.keys()]);
  if (allKeys.some((k) => k.includes("*"))) return table;

  const initialContext = machine.config.context;
  for (const [type, transitions] of root.transitions) {
    // A state's own handler would be selected before the root's: leave such events to the machine.
    if (children.some((c) => c.transitions.has(type))) continue;
    if (transitions.length !== 1) continue;
    const t = transitions[0];
    if (!t || t.guard !== undefined || t.actions.length === 0) continue;
    if (!t.actions.every(isInlineAssign)) continue;
    let target: AnyMachineSnapshot | undefined;
    if (t.target !== undefined && t.target.length > 0) {
      const node = t.target[0];
      if (t.target.length !== 1 || node === undefined || node.parent !== root) continue;
      // A template snapshot of that state: the fold only swaps its context.
      target = machine.resolveState({ value: node.key, context: typeof initialContext === "function" ? {} : (initialContext ?? {}) });
    }
    const assignments = t.actions.map((a) => {
      const { assignment } = a as { assignment: Assignment | Record<string, unknown> };
      if (typeof assignment === "function") return assignment;
      // The object form: each key computed (or taken) on its own, as xstate's resolveAssign does.
      return ((args, params) => {
        const partial: Record<string, unknown> = {};
        for (const key of Object.keys(assignment)) {
          const v = assignment[key];
          partial[key] = typeof v === "function" ? (v as Assignment)(args, params) : v;
        }
        return partial;
      }) as Assignment;
    });
    table.set(type, { target, assignments });
  }
  return table;
}

function noSpawn(): never {
  throw new Error("spawn is not available while folding events");
}

/** The machine's evolve, as a plain function (see above); falls back to the machine where it must. */
export function deriveEvolve<S extends AnyMachineSnapshot>(machine: AnyStateMachine): (snapshot: S, event: EventObject) => S {
  const table = deriveTable(machine);
  const self = createActor(machine);
  const system = self.system;
  return (snapshot, event) => {
    const step = table.get(event.type);
    if (step === undefined || snapshot.status !== "active") return evolveWith(machine, snapshot, event);
    const args = { context: snapshot.context as object, event, self, system, spawn: noSpawn };
    let context = snapshot.context as object;
    for (const assignment of step.assignments) {
      // xstate's resolveAssign: a fresh object per assign, later actions see the earlier result.
      context = Object.assign({}, context, assignment(args, undefined));
      args.context = context;
    }
    const base = step.target ?? snapshot;
    return { ...base, context } as S;
  };
}

/** The event types `deriveEvolve` folds without the interpreter (tests check every domain event is one). */
export function derivedEventTypes(machine: AnyStateMachine): string[] {
  return [...deriveTable(machine).keys()];
}
