/**
 * What a busy ledger's state costs as its day goes on: the decider alone, no Redis. Every message
 * of a project reserves on and commits to the one project budget, so its settled reservations grow
 * with the project's traffic. Folds `--messages` reserve + commit pairs into one budget and reports,
 * at each checkpoint, the CPU time of the last 1,000 pairs (decide + evolve) and the size and
 * `JSON.stringify` time of the snapshot the runtime writes every SNAPSHOT_EVERY events.
 *
 *   npx tsx bench/ledger-state.ts [--messages 1000,10000,100000]
 *
 * Single-threaded and deterministic in what it does; the times vary with the machine.
 */
import { randomUUID } from "node:crypto";
import { budgetDecider as decider, type LedgerState as BudgetState } from "../actors/ledger/index.js";
import { fold } from "../actors/decider.js";

const arg = process.argv.indexOf("--messages");
const checkpoints = (arg > 0 ? process.argv[arg + 1]! : "1000,10000,100000").split(",").map(Number);
const at = "2026-11-22T10:00:00.000Z";
const WINDOW = 1000;

function step(s: BudgetState, raw: Record<string, unknown>): BudgetState {
  const d = decider.decide(decider.parseCommand(raw), s);
  if (!d.ok) throw new Error(d.rejection.message);
  return fold(decider, d.events, s);
}

function pair(s: BudgetState): BudgetState {
  const reservationId = `res_${randomUUID()}`;
  s = step(s, { type: "reserve", at, reservationId, costMicros: 40 });
  return step(s, { type: "commit", at, reservationId, costMicros: 35, tokens: 120 });
}

let state = decider.initialState();
let done = 0;
const rows: Array<Record<string, number>> = [];
for (const n of checkpoints) {
  while (done < n - WINDOW) (state = pair(state)), done++;
  const t0 = process.cpuUsage();
  while (done < n) (state = pair(state)), done++;
  const cpu = process.cpuUsage(t0);
  const s0 = performance.now();
  const snapshot = JSON.stringify(decider.toSnapshot(state));
  const stringifyMs = performance.now() - s0;
  rows.push({
    messages: n,
    usPerMessage: Math.round(((cpu.user + cpu.system) / WINDOW) * 10) / 10,
    snapshotBytes: snapshot.length,
    stringifyMs: Math.round(stringifyMs * 10) / 10,
  });
  console.error(JSON.stringify(rows[rows.length - 1]));
}
console.log(JSON.stringify({ rows }));
