/**
 * Memory a conversation's state takes per accepted message (issue 7 §4, the soak's worker growth):
 * the decider alone, no Redis. Folds `--messages` messages (each: postMessage, 16 deltas,
 * completeReply — the soak's shape) into one conversation and reports the JS heap it grew by after
 * a full GC, per message, at two lengths (the difference is the marginal cost of one more message),
 * and the size of the state's JSON snapshot per message.
 *
 *   node --expose-gc --import tsx bench/conversation-state.ts [--messages 2400,10000]
 *
 * Deterministic in what it measures (no timing); the heap figures vary by a few percent between runs.
 */
import { randomUUID } from "node:crypto";
import { conversationDecider as decider, type ConversationState } from "../actors/conversation/index.js";
import { fold } from "../actors/decider.js";

const arg = process.argv.indexOf("--messages");
const lengths = (arg > 0 ? process.argv[arg + 1]! : "2400,10000").split(",").map(Number);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

const at = "2026-11-22T10:00:00.000Z";
const usage = { inputTokens: 3, outputTokens: 16 };
const hex = () => randomUUID().replace(/-/g, "");

function step(s: ConversationState, raw: Record<string, unknown>): ConversationState {
  const d = decider.decide(decider.parseCommand(raw), s);
  if (!d.ok) throw new Error(d.rejection.message);
  return fold(decider, d.events, s);
}

function messages(s: ConversationState, n: number, from: number): ConversationState {
  for (let i = from; i < from + n; i++) {
    const replyId = `r_${hex()}`;
    s = step(s, { type: "postMessage", at, messageId: `m_${hex()}`, replyId, clientMessageId: `soak-${hex()}`, text: `message ${i} of the soak`, userId: "u", maxTokens: 16 });
    for (let k = 0; k < 16; k++) s = step(s, { type: "appendDelta", at, replyId, index: k, text: "tok " });
    s = step(s, { type: "completeReply", at, replyId, finishReason: "stop", usage, costMicros: 5 });
  }
  return s;
}

const heap = () => {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
};

let state = messages(step(decider.initialState(), { type: "create", at, ownerId: "u", tenantId: "t" }), 50, 0);
const base = heap();
let done = 0;
const rows: Array<Record<string, number>> = [];
for (const n of lengths) {
  state = messages(state, n - done, done);
  done = n;
  const grown = heap() - base;
  const snapshot = JSON.stringify(decider.toSnapshot(state)).length;
  rows.push({ messages: n, heapBytesPerMessage: Math.round(grown / n), snapshotBytes: snapshot, snapshotBytesPerMessage: Math.round(snapshot / n) });
}
const [a, b] = [rows[0], rows[rows.length - 1]];
console.log(JSON.stringify({ rows, ...(a && b && b !== a ? { marginalHeapBytesPerMessage: Math.round((b.heapBytesPerMessage! * b.messages! - a.heapBytesPerMessage! * a.messages!) / (b.messages! - a.messages!)) } : {}) }));
