import fc from "fast-check";
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from "xstate";
import { describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { SessionEvents } from "../../core/events/session.js";
import { conversationDecider, ConversationDomainEvents } from "../../actors/conversation/index.js";
import type { DecidedEvent, Decision } from "../../actors/decider.js";
import { budgetDecider, ledgerDecider, type LedgerState } from "../../actors/ledger/decider.js";
import { budgetToStored, storedToNeutral, userToStored } from "../../actors/ledger/events.js";
import type { NeutralCommand, NeutralEvent } from "../../actors/ledger/machine.js";
import { decideWithInterpreter as decideWith, evolveWith } from "../../actors/machine-decider.js";
import { plannedPairs } from "../../actors/machine-plan.js";
import { derivedEventTypes } from "../../actors/machine-evolve.js";
import { sessionDecider } from "../../actors/session/index.js";

/**
 * The deciders decide and fold with tables derived from their machine's definition
 * (actors/machine-plan.ts, actors/machine-evolve.ts) instead of running the XState interpreter.
 * Here, for random command sequences (valid, repeated, stale, out of order), the interpreter-driven
 * path — decide and evolve both through `machine.transition` — and the deciders' path must agree at
 * every step: the same decision, and the same state (value, context, active state nodes,
 * persisted snapshot). (`decideWith` below is the interpreter-only reference.)
 */
function sameState(machine: AnyStateMachine, fast: AnyMachineSnapshot, slow: AnyMachineSnapshot): void {
  expect(fast.value).toStrictEqual(slow.value);
  expect(fast.context).toStrictEqual(slow.context);
  expect(fast.status).toBe(slow.status);
  expect(fast._nodes.map((n) => n.id)).toStrictEqual(slow._nodes.map((n) => n.id));
  expect([...fast.tags]).toStrictEqual([...slow.tags]);
  expect(machine.getPersistedSnapshot(fast)).toStrictEqual(machine.getPersistedSnapshot(slow));
}

/** What `sideBySide` needs of a decider whose commands map 1:1 to machine events (`cmd.<type>`). */
interface SideBySideDecider<S extends AnyMachineSnapshot> {
  machine: AnyStateMachine;
  initialState(): S;
  parseCommand(raw: unknown): { type: string };
  decide(command: never, state: S): unknown;
  evolve(state: S, event: never): S;
  parseEvent(raw: unknown): unknown;
}

/**
 * Run `raws` through the decider (tables) and through the interpreter side by side: at every step
 * the same decision and, after each accepted command, the same state.
 */
function sideBySide<S extends AnyMachineSnapshot>(d: SideBySideDecider<S>, raws: readonly unknown[]): void {
  const decide = d.decide as (command: unknown, state: S) => unknown;
  const evolve = d.evolve as (state: S, event: unknown) => S;
  let fast = d.initialState();
  let slow = d.initialState();
  for (const raw of raws) {
    const command = d.parseCommand(raw);
    const byMachine = decideWith(d.machine, slow, { type: `cmd.${command.type}`, cmd: command } as EventObject);
    expect(decide(command, fast)).toStrictEqual(byMachine);
    if (!byMachine.ok) continue;
    for (const e of byMachine.events) {
      fast = evolve(fast, d.parseEvent(e));
      slow = evolveWith(d.machine, slow, e as EventObject) as S;
    }
    sameState(d.machine, fast, slow);
  }
}

const day0 = Date.parse("2026-11-21T22:00:00.000Z");
/** Instants over three UTC days, in any order (late and early commands alike). */
const instant = fc.integer({ min: 0, max: 50 * 3_600_000 }).map((ms) => new Date(day0 + ms).toISOString());

// ---- conversation

const usage = fc.record({ inputTokens: fc.nat(50), outputTokens: fc.nat(50) });
const cids = fc.constantFrom("a", "b", "c", "__proto__");
const replyIds = fc.constantFrom("r1", "r2", "r3", "r4");
const conversationCommand = fc.oneof(
  fc.record({ at: instant, cid: cids, text: fc.constantFrom("x", "y"), n: fc.nat(3), maxTokens: fc.integer({ min: 1, max: 99 }) }).map((c) => ({
    type: "postMessage",
    at: c.at,
    messageId: `m${c.n}${c.cid}`,
    replyId: `r${c.n + 1}`,
    clientMessageId: c.cid,
    text: c.text,
    userId: "u",
    maxTokens: c.maxTokens,
  })),
  fc.record({ at: instant, replyId: replyIds, index: fc.nat(5) }).map((c) => ({ type: "appendDelta", ...c, text: `t${c.index}` })),
  fc.record({ at: instant, replyId: replyIds, usage, costMicros: fc.nat(9) }).map((c) => ({ type: "completeReply", ...c, finishReason: "stop" })),
  fc.record({ at: instant, replyId: fc.option(replyIds, { nil: undefined }), usage, costMicros: fc.nat(9) }).map((c) =>
    c.replyId === undefined ? { type: "cancelReply", at: c.at, usage: c.usage, costMicros: c.costMicros } : { type: "cancelReply", ...c },
  ),
  fc.record({ at: instant, replyId: replyIds, usage, costMicros: fc.nat(9) }).map((c) => ({ type: "failReply", ...c, code: "X", message: "y" })),
  fc.record({ at: instant, cid: cids }).map((c) => ({ type: "reject", at: c.at, clientMessageId: c.cid, code: "QUOTA_EXCEEDED", message: "no" })),
  instant.map((at) => ({ type: "archive", at })),
  fc.record({ at: instant, ownerId: fc.constantFrom("u", "v") }).map((c) => ({ type: "create", ...c, tenantId: "t" })),
);

describe("derived evolve ≡ the machine's evolve", () => {
  it("folds every domain event of every aggregate without the interpreter", () => {
    expect(derivedEventTypes(conversationDecider.machine).sort()).toStrictEqual(Object.keys(ConversationDomainEvents).sort());
    expect(derivedEventTypes(sessionDecider.machine).sort()).toStrictEqual(Object.keys(SessionEvents).sort());
    const neutral = ["configured", "toppedUp", "reserved", "committed", "released", "reset"];
    expect(derivedEventTypes(ledgerDecider.machine).sort()).toStrictEqual([...neutral].sort());
    expect(derivedEventTypes(budgetDecider.machine).sort()).toStrictEqual([...neutral].sort());
  });

  it("plans every command in every state without the interpreter", () => {
    const pairs = (states: readonly string[], commands: string[]) => states.flatMap((s) => commands.map((c) => `${s} cmd.${c}`)).sort();
    const conv = ["create", "postMessage", "reject", "appendDelta", "completeReply", "cancelReply", "failReply", "archive"];
    const planned = (m: AnyStateMachine) => plannedPairs(m).filter((p) => p.includes(" cmd.")).sort();
    expect(planned(conversationDecider.machine)).toStrictEqual(pairs(["new", "idle", "replying", "archived"], conv));
    expect(planned(sessionDecider.machine)).toStrictEqual(pairs(["new", "open", "closed"], ["open", "resume", "close", "upgradeTier"]));
    const ledger = ["housekeep", "configure", "topUp", "reserve", "commit", "release", "expire"];
    expect(planned(ledgerDecider.machine)).toStrictEqual(pairs(["unconfigured", "active"], ledger));
    expect(planned(budgetDecider.machine)).toStrictEqual(pairs(["unconfigured", "active"], ledger));
  });

  it("conversation: same decisions and states for any command sequence", () => {
    const d = conversationDecider;
    fc.assert(
      fc.property(fc.array(conversationCommand, { maxLength: 60 }), (commands) => {
        sideBySide(d, [{ type: "create", at: "2026-11-21T22:00:00.000Z", ownerId: "u", tenantId: "t" }, ...commands]);
      }),
      { numRuns: 300 },
    );
  });

  it("session: same decisions and states for any command sequence", () => {
    const d = sessionDecider;
    const command = fc.oneof(
      fc.record({ at: instant, sessionId: fc.constantFrom("s", "t"), userId: fc.constantFrom("u", "v"), tier: fc.constantFrom("anonymous", "registered") }).map(
        (c) => ({ type: "open", ...c, tenantId: "t", transport: "sse" }),
      ),
      fc.record({ at: instant, transport: fc.constantFrom("sse", "socketio") }).map((c) => ({ type: "resume", ...c })),
      fc.record({ at: instant, reason: fc.constantFrom("client", "timeout") }).map((c) => ({ type: "close", ...c })),
      fc.record({ at: instant, tier: fc.constantFrom("anonymous", "registered", "privileged") }).map((c) => ({ type: "upgradeTier", ...c })),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 30 }), (commands) => {
        sideBySide(d, commands);
      }),
      { numRuns: 200 },
    );
  });

  /**
   * The ledger decides in two steps (housekeeping, then the command on the state with housekeeping
   * folded in); the reference below does both steps and every fold on the machine, as decider.ts
   * did before the derived evolve.
   */
  function machineLedgerDecide(
    scope: "user" | "project",
    machine: AnyStateMachine,
    state: LedgerState,
    housekeep: NeutralCommand,
    main: NeutralCommand,
  ): { decision: Decision<DecidedEvent>; next: LedgerState } {
    const pre = decideWith<NeutralEvent>(machine, state, housekeep);
    if (!pre.ok) return { decision: pre, next: state };
    let temp = state;
    for (const e of pre.events) temp = evolveWith(machine, temp, e);
    const m = decideWith<NeutralEvent>(machine, temp, main);
    if (!m.ok) return { decision: m, next: state };
    for (const e of m.events) temp = evolveWith(machine, temp, e);
    const toStored = scope === "user" ? userToStored : budgetToStored;
    return { decision: { ok: true, events: [...pre.events, ...m.events].map(toStored) }, next: temp };
  }

  const rids = fc.constantFrom("q1", "q2", "q3", "q4", "q5");
  const tierArb = fc.option(fc.constantFrom("anonymous", "registered", "privileged"), { nil: undefined });
  const ledgerCommand = fc.oneof(
    { arbitrary: fc.record({ at: instant, reservationId: rids, tokens: fc.nat(40_000), tier: tierArb }).map((c) => ({ type: "reserve", ...c })), weight: 4 },
    { arbitrary: fc.record({ at: instant, reservationId: rids, tokens: fc.nat(40_000), costMicros: fc.nat(999), tier: tierArb }).map((c) => ({ type: "commit", ...c })), weight: 3 },
    { arbitrary: fc.record({ at: instant, reservationId: rids, tier: tierArb }).map((c) => ({ type: "release", ...c })), weight: 1 },
    { arbitrary: fc.record({ at: instant, tier: tierArb }).map((c) => ({ type: "expire", ...c })), weight: 1 },
    { arbitrary: fc.record({ at: instant, tokens: fc.integer({ min: 1, max: 9_000 }), tier: tierArb }).map((c) => ({ type: "topUp", ...c })), weight: 1 },
    {
      arbitrary: fc
        .record({ at: instant, tier: tierArb, dailyTokens: fc.option(fc.nat(60_000), { nil: undefined }), maxConcurrent: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }) })
        .map((c) => ({ type: "configure", ...c })),
      weight: 1,
    },
  );

  function neutralOf(scope: "user" | "project", c: Record<string, unknown>): { housekeep: NeutralCommand; main: NeutralCommand } {
    const at = c.at as string;
    const tierHint = scope === "user" && c.type !== "configure" ? (c.tier as "anonymous" | "registered" | "privileged" | undefined) : undefined;
    const housekeep: NeutralCommand = { type: "cmd.housekeep", at, tierHint, expire: c.type === "reserve" || c.type === "expire", configuring: c.type === "configure" };
    const amount = (scope === "user" ? c.tokens : c.costMicros) as number;
    let main: NeutralCommand;
    switch (c.type) {
      case "reserve":
        main = { type: "cmd.reserve", at, reservationId: c.reservationId as string, amount, conversationId: c.conversationId as string | undefined };
        break;
      case "commit":
        main = { type: "cmd.commit", at, reservationId: c.reservationId as string, amount, other: (scope === "user" ? c.costMicros : c.tokens) as number };
        break;
      case "release":
        main = { type: "cmd.release", at, reservationId: c.reservationId as string };
        break;
      case "expire":
        main = { type: "cmd.expire", at };
        break;
      case "topUp":
        main = { type: "cmd.topUp", at, amount };
        break;
      default:
        main =
          scope === "user"
            ? { type: "cmd.configure", at, tier: c.tier as "anonymous" | undefined, limit: c.dailyTokens as number | undefined, maxConcurrent: c.maxConcurrent as number | undefined }
            : { type: "cmd.configure", at, tier: undefined, limit: c.dailyMicros as number | null | undefined, maxConcurrent: c.maxConcurrent as number | null | undefined };
    }
    return { housekeep, main };
  }

  for (const scope of ["user", "project"] as const) {
    it(`${scope} ledger: same decisions, same folded state (Decision.next) for any command sequence`, () => {
      const d = scope === "user" ? ledgerDecider : budgetDecider;
      const parse = (raw: Record<string, unknown>) => {
        if (scope === "user") return raw;
        // The budget's commands: cost micro-units, no tier.
        const { tier: _t, tokens, costMicros, dailyTokens, ...rest } = raw;
        if (raw.type === "commit") return { ...rest, costMicros: tokens, tokens: costMicros };
        if (raw.type === "reserve" || raw.type === "topUp") return { ...rest, costMicros: tokens };
        if (raw.type === "configure") return { ...rest, ...(dailyTokens === undefined ? {} : { dailyMicros: dailyTokens }) };
        return rest;
      };
      fc.assert(
        fc.property(fc.array(ledgerCommand, { maxLength: 50 }), (commands) => {
          let fast: LedgerState = d.initialState();
          let slow: LedgerState = d.initialState();
          for (const raw of commands) {
            const input = parse(raw as Record<string, unknown>) as Record<string, unknown>;
            const command = d.parseCommand(input as never);
            const { housekeep, main } = neutralOf(scope, command as unknown as Record<string, unknown>);
            const ref = machineLedgerDecide(scope, d.machine, slow, housekeep, main);
            const got = d.decide(command as never, fast);
            if (!ref.decision.ok || ref.decision.events.length === 0) {
              expect(got.ok).toBe(ref.decision.ok);
              if (!got.ok && !ref.decision.ok) expect(got.rejection).toStrictEqual(ref.decision.rejection);
              if (got.ok && ref.decision.ok) expect(got.events).toStrictEqual([]);
              continue;
            }
            if (!got.ok) throw new Error("refused where the machine accepted");
            expect(got.events).toStrictEqual(ref.decision.events);
            // The runtime takes Decision.next as the state after the events: it must be the machine's fold.
            sameState(d.machine, got.next as LedgerState, ref.next);
            // And folding the stored events one by one (rehydration) gives it too.
            for (const e of got.events) {
              fast = d.evolve(fast, d.parseEvent(e));
              const neutral = storedToNeutral(e, scope);
              if (!neutral) throw new Error(`no neutral event for ${e.type}`);
              slow = evolveWith(d.machine, slow, neutral);
            }
            sameState(d.machine, fast, slow);
          }
        }),
        { numRuns: 300 },
      );
    });
  }

  it("an event the machine does not fold is still refused as a permanent error", () => {
    const s = conversationDecider.initialState();
    let err: unknown;
    try {
      conversationDecider.evolve(s, { type: "assistant.nonsense", data: {} } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TributaryError);
    expect((err as TributaryError).permanent).toBe(true);
  });
});
