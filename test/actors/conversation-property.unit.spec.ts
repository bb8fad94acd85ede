import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { conversationDecider as decider, type ConversationState } from "../../actors/conversation/index.js";
import { fold, type DecidedEvent } from "../../actors/decider.js";

/**
 * Any sequence of conversation commands — valid, repeated, stale, out of order, with gaps — keeps
 * the log well-formed: per reply, delta indexes are 0..n-1 once each; every started reply ends at
 * most once and before the next one starts; a clientMessageId is received at most once; the state
 * is the fold of the log.
 */
const at = "2026-11-21T10:00:00.000Z";
const usage = { inputTokens: 1, outputTokens: 1 };
const ids = fc.constantFrom("a", "b", "c");
const replyIds = fc.constantFrom("r1", "r2", "r3", "r4");

const command = fc.oneof(
  fc.record({ type: fc.constant("postMessage"), clientMessageId: ids, text: fc.constantFrom("x", "y"), n: fc.nat(3) }).map((c) => ({
    type: "postMessage",
    at,
    messageId: `m${c.n}${c.clientMessageId}`,
    replyId: `r${c.n + 1}`,
    clientMessageId: c.clientMessageId,
    text: c.text,
    userId: "u",
    maxTokens: 8,
  })),
  fc.record({ replyId: replyIds, index: fc.nat(6) }).map((c) => ({ type: "appendDelta", at, replyId: c.replyId, index: c.index, text: `t${c.index}` })),
  replyIds.map((replyId) => ({ type: "completeReply", at, replyId, finishReason: "stop", usage, costMicros: 1 })),
  fc.option(replyIds, { nil: undefined }).map((replyId) => (replyId === undefined ? { type: "cancelReply", at, usage, costMicros: 1 } : { type: "cancelReply", at, replyId, usage, costMicros: 1 })),
  replyIds.map((replyId) => ({ type: "failReply", at, replyId, usage, costMicros: 1, code: "X", message: "y" })),
  ids.map((clientMessageId) => ({ type: "reject", at, clientMessageId, code: "QUOTA_EXCEEDED", message: "no" })),
  fc.constant({ type: "archive", at }),
  fc.constant({ type: "create", at, ownerId: "u", tenantId: "t" }),
);

describe("conversation: any command sequence keeps the log well-formed", () => {
  it("holds", () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        let state: ConversationState = decider.initialState();
        const log: DecidedEvent[] = [];
        for (const raw of [{ type: "create", at, ownerId: "u", tenantId: "t" }, ...commands]) {
          const d = decider.decide(decider.parseCommand(raw), state);
          if (!d.ok) continue;
          log.push(...d.events);
          state = fold(decider, d.events, state);
        }
        const received = new Set<string>();
        let running: { id: string; next: number } | null = null;
        const ended = new Set<string>();
        for (const e of log) {
          const data = e.data as Record<string, unknown>;
          switch (e.type) {
            case "message.received":
              expect(received.has(String(data.clientMessageId))).toBe(false);
              received.add(String(data.clientMessageId));
              break;
            case "assistant.started":
              expect(running).toBeNull();
              expect(ended.has(String(data.messageId))).toBe(false);
              running = { id: String(data.messageId), next: 0 };
              break;
            case "assistant.delta":
              expect(running?.id).toBe(data.messageId);
              expect(data.index).toBe(running?.next);
              if (running) running.next++;
              break;
            case "assistant.completed":
            case "assistant.cancelled":
            case "assistant.failed":
              expect(running?.id).toBe(data.messageId);
              ended.add(String(data.messageId));
              running = null;
              break;
          }
        }
        expect(fold(decider, log.map((e) => decider.parseEvent(e))).context).toEqual(state.context);
        expect(decider.versionOf(state)).toBe(log.length);
      }),
      { numRuns: 300 },
    );
  });
});
