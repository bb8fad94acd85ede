/**
 * The deciders' share of one command, in process (no Redis): the machine transitions of a
 * postMessage — decided and folded through xstate's interpreter (`machine.transition`, the path
 * before the derived tables) vs. through the tables read once from the same machines
 * (actors/machine-plan.ts, actors/machine-evolve.ts). Both run alternately in the same process,
 * so the ratio holds however busy the machine is.
 *
 *   npx tsx bench/actor-deciders.ts [--rounds 5] [--iterations 20000]
 *
 * new: a new user's first message — ledger housekeeping (reset + configuration) and reserve on a
 * fresh ledger, the conversation's decision and its two events. returning: the same on a known
 * ledger (one reservation event), plus the reply's delta and completion and the ledger's commit.
 */
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from "xstate";
import { conversationDecider, type ConversationState } from "../actors/conversation/index.js";
import { ledgerDecider, type LedgerState } from "../actors/ledger/decider.js";
import type { NeutralCommand } from "../actors/ledger/machine.js";
import { decideWith, decideWithInterpreter, evolveWith } from "../actors/machine-decider.js";
import { deriveEvolve } from "../actors/machine-evolve.js";
import { numberFlag } from "./lib/args.js";

const ROUNDS = numberFlag("--rounds", 5);
const N = numberFlag("--iterations", 20_000);

type Path = {
  decide: (m: AnyStateMachine, s: AnyMachineSnapshot, e: EventObject) => { ok: boolean; events?: unknown[] };
  evolve: (m: AnyStateMachine, s: AnyMachineSnapshot, e: EventObject) => AnyMachineSnapshot;
};
const evolvers = new Map<AnyStateMachine, (s: AnyMachineSnapshot, e: EventObject) => AnyMachineSnapshot>();
const tables: Path = {
  decide: (m, s, e) => decideWith(m, s, e),
  evolve: (m, s, e) => {
    let f = evolvers.get(m);
    if (!f) evolvers.set(m, (f = deriveEvolve(m)));
    return f(s, e);
  },
};
const interpreter: Path = { decide: (m, s, e) => decideWithInterpreter(m, s, e), evolve: (m, s, e) => evolveWith(m, s, e) };

const at = "2026-11-22T10:00:00.000Z";
const L = ledgerDecider.machine;
const C = conversationDecider.machine;

/** The ledger's two-step decide (decider.ts), with every transition on `p`. */
function reserve(p: Path, s: LedgerState, id: string): LedgerState {
  const hk: NeutralCommand = { type: "cmd.housekeep", at, tierHint: "privileged", expire: true, configuring: false };
  const pre = p.decide(L, s, hk) as { ok: true; events: EventObject[] };
  for (const e of pre.events) s = p.evolve(L, s, e) as LedgerState;
  const main = p.decide(L, s, { type: "cmd.reserve", at, reservationId: id, amount: 10, conversationId: "c" } as EventObject) as { ok: true; events: EventObject[] };
  for (const e of main.events) s = p.evolve(L, s, e) as LedgerState;
  return s;
}

function commit(p: Path, s: LedgerState, id: string): LedgerState {
  const hk: NeutralCommand = { type: "cmd.housekeep", at, tierHint: undefined, expire: false, configuring: false };
  const pre = p.decide(L, s, hk) as { ok: true; events: EventObject[] };
  for (const e of pre.events) s = p.evolve(L, s, e) as LedgerState;
  const main = p.decide(L, s, { type: "cmd.commit", at, reservationId: id, amount: 5, other: 1 } as EventObject) as { ok: true; events: EventObject[] };
  for (const e of main.events) s = p.evolve(L, s, e) as LedgerState;
  return s;
}

function conv(p: Path, s: ConversationState, cmd: Record<string, unknown>): ConversationState {
  const d = p.decide(C, s, { type: `cmd.${String(cmd.type)}`, cmd } as EventObject) as { ok: boolean; events: EventObject[] };
  if (!d.ok) throw new Error(`refused: ${JSON.stringify(d)}`);
  for (const e of d.events) s = p.evolve(C, s, e) as ConversationState;
  return s;
}

const freshConv = (() => {
  let s = conversationDecider.initialState();
  s = conv(tables, s, { type: "create", at, ownerId: "u", tenantId: "t", projectId: null });
  return s;
})();
const knownLedger = (() => {
  let s = ledgerDecider.initialState();
  s = reserve(tables, s, "w");
  return commit(tables, s, "w");
})();

function newUser(p: Path, i: number): void {
  reserve(p, ledgerDecider.initialState(), `r${i}`);
  conv(p, freshConv, { type: "postMessage", at, messageId: `m${i}`, replyId: `r${i}`, clientMessageId: `c${i}`, text: "hello", userId: "u", maxTokens: 1 });
}

function returning(p: Path, i: number): void {
  let l = reserve(p, knownLedger, `r${i}`);
  let c = conv(p, freshConv, { type: "postMessage", at, messageId: `m${i}`, replyId: `r${i}`, clientMessageId: `c${i}`, text: "hello", userId: "u", maxTokens: 1 });
  c = conv(p, c, { type: "appendDelta", at, replyId: `r${i}`, index: 0, text: "hi" });
  conv(p, c, { type: "completeReply", at, replyId: `r${i}`, finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1 }, costMicros: 1 });
  l = commit(p, l, `r${i}`);
}


function time(fn: (p: Path, i: number) => void, p: Path): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(p, i);
  return Number(process.hrtime.bigint() - t) / 1e3 / N;
}

const rows: Record<string, { interpreter: number[]; tables: number[] }> = { new: { interpreter: [], tables: [] }, returning: { interpreter: [], tables: [] } };
for (const [name, fn] of [["new", newUser], ["returning", returning]] as const) {
  time(fn, interpreter); // warm-up
  time(fn, tables);
  for (let r = 0; r < ROUNDS; r++) {
    rows[name]?.interpreter.push(time(fn, interpreter));
    rows[name]?.tables.push(time(fn, tables));
  }
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
for (const [name, r] of Object.entries(rows)) {
  const a = med(r.interpreter);
  const b = med(r.tables);
  console.log(`${name}: decider work per message: interpreter ${a.toFixed(1)} µs, tables ${b.toFixed(1)} µs (${(a / b).toFixed(1)}× less, ${(a - b).toFixed(1)} µs saved); median of ${ROUNDS} rounds × ${N}`);
}
