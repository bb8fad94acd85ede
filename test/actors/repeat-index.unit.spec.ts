import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createConversationDecider, lookupClientMessage, type ConversationState } from "../../actors/conversation/index.js";
import { needsHistory } from "../../actors/conversation/repeat-index.js";
import { RECENT_MESSAGES } from "../../actors/conversation/state.js";
import { fold, type DecidedEvent, type Decision } from "../../actors/decider.js";
import { textDigest } from "../../actors/digest.js";
import { fingerprint, fpsAdd, fpsEmpty, fpsMayHave, fpsSize, type FingerprintSet } from "../../actors/fingerprint-set.js";
import { findInLog } from "../../actors/runtime/message-history.js";
import type { RecordedEvent } from "../../core/envelope.js";

/**
 * The conversation keeps only its last messages in full and every id as a fingerprint (issue 7's
 * soak: the worker's memory grew with every message ever accepted). CONTRACT §3 must not notice:
 * a repeat is answered with the first answer however old, another text is a CONFLICT, a used id is
 * refused — with the log read (as the runtime does) where the fingerprints can only say "perhaps".
 */
const at = "2026-11-22T10:00:00.000Z";
const usage = { inputTokens: 1, outputTokens: 1 };

describe("FingerprintSet", () => {
  it("never forgets a key, never mutates an older version, and round-trips through JSON", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 6 }), { maxLength: 700 }), (keys) => {
        let s: FingerprintSet = fpsEmpty();
        for (const k of keys) {
          const before = JSON.stringify(s);
          const prev = s;
          s = fpsAdd(s, k);
          expect(JSON.stringify(prev)).toBe(before);
        }
        expect(fpsSize(s)).toBe(keys.length);
        for (const k of keys) {
          expect(fpsMayHave(s, k)).toBe(true);
          // 53 bits: exact as a JSON number, so a snapshot keeps every fingerprint as it was.
          expect(Number.isSafeInteger(fingerprint(k)) && fingerprint(k) >= 0).toBe(true);
        }
        expect(JSON.parse(JSON.stringify(s))).toEqual(s);
        for (const chunk of s) expect(chunk.length).toBeLessThanOrEqual(256);
      }),
      { numRuns: 100 },
    );
  });
});

// ---- a runtime-like driver: the bounded decider, with the log read where it says "history"

type Step = { kind: "events"; events: DecidedEvent[] } | { kind: "rejected"; code: string } | { kind: "duplicate"; messageId: string; replyId: string; version: number };

const asLog = (log: DecidedEvent[]): RecordedEvent[] =>
  log.map((e, i) => ({ stream: { kind: "conversation", id: "c" }, offset: `${i + 1}-0`, version: i + 1, type: e.type, at, data: e.data, hash: "" }));

async function* iterate<T>(xs: T[]): AsyncGenerator<T> {
  yield* xs;
}

/** How the unbounded reference answers: from state alone (its window never drops anything). */
function referenceStep(d: ReturnType<typeof createConversationDecider>, state: ConversationState, raw: Record<string, unknown>): Step {
  const cmd = d.parseCommand(raw);
  if (cmd.type === "postMessage") {
    const seen = lookupClientMessage(state, cmd.clientMessageId, cmd.text);
    if (seen.kind === "duplicate") return { kind: "duplicate", messageId: seen.messageId, replyId: seen.replyId, version: seen.receivedVersion };
  }
  return outcome(d.decide(cmd, state));
}

/** How the runtime answers with the bounded decider (conversation-process.ts postMessage). */
async function boundedStep(d: ReturnType<typeof createConversationDecider>, state: ConversationState, log: DecidedEvent[], raw: Record<string, unknown>): Promise<Step> {
  let cmd = d.parseCommand(raw);
  if (cmd.type === "postMessage") {
    const seen = lookupClientMessage(state, cmd.clientMessageId, cmd.text, { messageId: cmd.messageId, replyId: cmd.replyId });
    if (seen.kind === "duplicate") return { kind: "duplicate", messageId: seen.messageId, replyId: seen.replyId, version: seen.receivedVersion };
    if (seen.kind === "conflict") return { kind: "rejected", code: "CONFLICT" };
    if (seen.kind === "history") {
      const found = await findInLog(iterate(asLog(log)), cmd);
      if (found.message) {
        if (found.message.digest !== textDigest(cmd.text)) return { kind: "rejected", code: "CONFLICT" };
        return { kind: "duplicate", messageId: found.message.messageId, replyId: found.message.replyId, version: Number(found.message.offset.split("-")[0]) };
      }
      if (found.idsUsed) return { kind: "rejected", code: "CONFLICT" };
      cmd = { ...cmd, history: "checked" };
    }
  }
  if (cmd.type === "reject" && needsHistory(state.context, { clientMessageId: cmd.clientMessageId })) {
    const found = await findInLog(iterate(asLog(log)), { clientMessageId: cmd.clientMessageId, messageId: "", replyId: "" });
    if (found.message) return { kind: "rejected", code: "CONFLICT" };
    cmd = { ...cmd, history: "checked" };
  }
  return outcome(d.decide(cmd, state));
}

function outcome(dec: Decision<DecidedEvent>): Step {
  return dec.ok ? { kind: "events", events: dec.events } : { kind: "rejected", code: dec.rejection.code };
}

const ids = fc.constantFrom("a", "b", "c", "d", "e", "f");
const replyIds = fc.constantFrom("r1", "r2", "r3", "r4", "r5", "r6");
const command = fc.oneof(
  { weight: 4, arbitrary: fc.record({ clientMessageId: ids, text: fc.constantFrom("x", "y"), n: fc.nat(5), m: fc.nat(5) }).map((c) => ({
    type: "postMessage",
    at,
    messageId: `m${c.n}${c.clientMessageId}`,
    // Sometimes a messageId or another message's replyId again: a used id must be refused.
    replyId: c.m === 0 ? `m${c.n}${c.clientMessageId}` : `r${c.m}`,
    clientMessageId: c.clientMessageId,
    text: c.text,
    userId: "u",
    maxTokens: 8,
  })) },
  { weight: 2, arbitrary: replyIds.map((replyId) => ({ type: "completeReply", at, replyId, finishReason: "stop", usage, costMicros: 1 })) },
  { weight: 1, arbitrary: fc.record({ replyId: replyIds, index: fc.nat(3) }).map((c) => ({ type: "appendDelta", at, replyId: c.replyId, index: c.index, text: `t${c.index}` })) },
  { weight: 1, arbitrary: replyIds.map((replyId) => ({ type: "cancelReply", at, replyId, usage, costMicros: 1 })) },
  { weight: 1, arbitrary: ids.map((clientMessageId) => ({ type: "reject", at, clientMessageId, code: "QUOTA_EXCEEDED", message: "no" })) },
);

describe("a conversation that keeps only its last messages in full", () => {
  it("answers every command as one that remembers everything does (windows of 1 and 2 against an unbounded one)", async () => {
    const reference = createConversationDecider({ recentMessages: 1_000_000 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1, 2), fc.array(command, { maxLength: 80 }), async (window, commands) => {
        const bounded = createConversationDecider({ recentMessages: window });
        const create = { type: "create", at, ownerId: "u", tenantId: "t" };
        let refState = fold(reference, outcomeEvents(reference.decide(reference.parseCommand(create), reference.initialState())));
        let bState = fold(bounded, outcomeEvents(bounded.decide(bounded.parseCommand(create), bounded.initialState())));
        const log: DecidedEvent[] = outcomeEvents(reference.decide(reference.parseCommand(create), reference.initialState()));
        for (const raw of commands) {
          const want = referenceStep(reference, refState, raw);
          const got = await boundedStep(bounded, bState, log, raw);
          if (raw.type === "postMessage" || raw.type === "reject") expect(got).toEqual(want);
          else {
            // A reply command about a reply older than the window is refused rather than ignored:
            // either way nothing is appended (the runtime only repeats its own latest reply's).
            expect(got.kind === "events" ? got.events : []).toEqual(want.kind === "events" ? want.events : []);
          }
          if (want.kind === "events") {
            log.push(...want.events);
            refState = fold(reference, want.events, refState);
            bState = fold(bounded, want.events, bState);
          }
          expect(bState.context.recent.length).toBeLessThanOrEqual(window);
        }
        // A snapshot of the bounded state decides like the state itself (rehydration = full fold).
        const back = bounded.fromSnapshot(JSON.parse(JSON.stringify(bounded.toSnapshot(bState))));
        expect(back.context).toEqual(bState.context);
        expect(fold(bounded, log).context).toEqual(bState.context);
      }),
      { numRuns: 300 },
    );
  });

  it("stays small however many messages it has taken (the soak's worker growth)", () => {
    const d = createConversationDecider();
    let s = fold(d, outcomeEvents(d.decide(d.parseCommand({ type: "create", at, ownerId: "u", tenantId: "t" }), d.initialState())));
    const sizeAt: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = `r_${i.toString(16).padStart(32, "0")}`;
      s = fold(d, outcomeEvents(d.decide(d.parseCommand({ type: "postMessage", at, messageId: `m_${i.toString(16).padStart(32, "0")}`, replyId: r, clientMessageId: `soak-${i}-${"x".repeat(20)}`, text: `message ${i}`, userId: "u", maxTokens: 8 }), s)), s);
      s = fold(d, outcomeEvents(d.decide(d.parseCommand({ type: "completeReply", at, replyId: r, finishReason: "stop", usage, costMicros: 1 }), s)), s);
      if (i === 999 || i === 2999) sizeAt.push(JSON.stringify(d.toSnapshot(s)).length);
    }
    expect(s.context.recent.length).toBe(RECENT_MESSAGES);
    // Three 53-bit fingerprints per message (≤ 17 characters each in JSON); the full records of
    // before took ~365 bytes per message.
    expect((sizeAt[1]! - sizeAt[0]!) / 2000).toBeLessThan(56);
    // The oldest message is still a repeat: the state sends the runtime to the log for it.
    expect(lookupClientMessage(s, `soak-0-${"x".repeat(20)}`, "message 0")).toEqual({ kind: "history" });
    expect(lookupClientMessage(s, "never-used", "message 0")).toEqual({ kind: "new" });
  });

  it("a fingerprint collision is only a look-up: the log finds nothing and the message is accepted", async () => {
    // A 53-bit collision cannot be searched for in a test: the state is given one, the fingerprint
    // of a clientMessageId never used (as if another id had hashed to it).
    const [used, unused] = ["k-used", "k-unused"];
    const d = createConversationDecider({ recentMessages: 1 });
    const log: DecidedEvent[] = [];
    let s = d.initialState();
    const run = (raw: Record<string, unknown>) => {
      const dec = d.decide(d.parseCommand(raw), s);
      if (!dec.ok) throw new Error(dec.rejection.message);
      log.push(...dec.events);
      s = fold(d, dec.events, s);
    };
    run({ type: "create", at, ownerId: "u", tenantId: "t" });
    run({ type: "postMessage", at, messageId: "m1", replyId: "r1", clientMessageId: used, text: "one", userId: "u", maxTokens: 8 });
    run({ type: "completeReply", at, replyId: "r1", finishReason: "stop", usage, costMicros: 1 });
    run({ type: "postMessage", at, messageId: "m2", replyId: "r2", clientMessageId: "other", text: "two", userId: "u", maxTokens: 8 });
    run({ type: "completeReply", at, replyId: "r2", finishReason: "stop", usage, costMicros: 1 });
    s = { ...s, context: { ...s.context, seen: fpsAdd(s.context.seen, `c:${unused}`) } } as typeof s;

    const post = { type: "postMessage", at, messageId: "m3", replyId: "r3", clientMessageId: unused, text: "three", userId: "u", maxTokens: 8 };
    expect(lookupClientMessage(s, unused, "three", { messageId: "m3", replyId: "r3" })).toEqual({ kind: "history" });
    // The decider alone cannot tell and says so; the runtime reads the log, which has no such id.
    const alone = d.decide(d.parseCommand(post), s);
    expect(alone.ok ? null : alone.rejection.details).toEqual({ lookup: "log" });
    expect(await findInLog(iterate(asLog(log)), { clientMessageId: unused, messageId: "m3", replyId: "r3" })).toEqual({ idsUsed: false });
    const checked = d.decide(d.parseCommand({ ...post, history: "checked" }), s);
    expect(checked.ok && checked.events.map((e) => e.type)).toEqual(["message.received", "assistant.started"]);
    // And the message that did use the colliding id is answered from the log with its first answer.
    expect(await findInLog(iterate(asLog(log)), { clientMessageId: used, messageId: "m9", replyId: "r9" })).toEqual({
      message: { messageId: "m1", replyId: "r1", digest: textDigest("one"), offset: "2-0" },
      idsUsed: false,
    });
  });

  it("a snapshot from before (every message in full) is refused, so the actor is folded from its log", () => {
    const d = createConversationDecider();
    const old = { value: "idle", context: { version: 3, title: "", model: "sim-1", ownerId: "u", tenantId: "t", projectId: null, messages: {}, ids: {}, reply: null, pendingPrompt: null, totals: { messages: 0, rejected: 0, replies: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 } } };
    expect(() => d.fromSnapshot(old)).toThrow(/snapshot/);
  });
});

function outcomeEvents(dec: Decision<DecidedEvent>): DecidedEvent[] {
  if (!dec.ok) throw new Error(dec.rejection.message);
  return dec.events;
}
