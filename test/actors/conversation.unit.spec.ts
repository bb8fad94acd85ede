import { describe, expect, it } from "vitest";
import { conversationDecider as decider, lookupClientMessage, messageRecord, runningReply, conversationStatus } from "../../actors/conversation/index.js";
import { fold } from "../../actors/decider.js";
import { estimatePromptTokens } from "../../actors/economics/index.js";
import { spec } from "../support/decider-spec.js";

const at = "2026-11-21T10:00:00.000Z";
const created = {
  type: "conversation.created",
  data: { title: "Hello", model: "sim-1", ownerId: "u1", tenantId: "t1", projectId: null },
};
const post = (over: Record<string, unknown> = {}) => ({
  type: "postMessage",
  at,
  messageId: "m1",
  replyId: "r1",
  clientMessageId: "c1",
  text: "hi there",
  userId: "u1",
  maxTokens: 32,
  ...over,
});
const received = { type: "message.received", data: { messageId: "m1", clientMessageId: "c1", userId: "u1", text: "hi there" } };
const started = {
  type: "assistant.started",
  data: {
    messageId: "r1",
    replyTo: "m1",
    model: "sim-1",
    clientMessageId: "c1",
    userId: "u1",
    maxTokens: 32,
    inputTokens: estimatePromptTokens("hi there"),
  },
};
const delta = (index: number, text: string) => ({ type: "assistant.delta", data: { messageId: "r1", index, text } });
const usage = { inputTokens: 6, outputTokens: 2 };
const completed = {
  type: "assistant.completed",
  data: { messageId: "r1", text: "ab", finishReason: "stop", usage, costMicros: 10 },
};
const running = [created, received, started];

describe("conversation: create", () => {
  it("creates with defaults", () => {
    spec(decider)
      .given([])
      .when({ type: "create", at, ownerId: "u1", tenantId: "t1" })
      .then([{ type: "conversation.created", data: { title: "Untitled", model: "sim-1", ownerId: "u1", tenantId: "t1", projectId: null } }]);
  });
  it("creates with title, model and project", () => {
    spec(decider)
      .given([])
      .when({ type: "create", at, ownerId: "u1", tenantId: "t1", title: "T", model: "gpt-4o", projectId: "p1" })
      .then([{ type: "conversation.created", data: { title: "T", model: "gpt-4o", ownerId: "u1", tenantId: "t1", projectId: "p1" } }]);
  });
  it("a repeated create by the same owner is a no-op", () => {
    spec(decider).given([created]).when({ type: "create", at, ownerId: "u1", tenantId: "t1" }).then([]);
  });
  it("a create by someone else on an existing id is a CONFLICT", () => {
    spec(decider).given([created]).when({ type: "create", at, ownerId: "u2", tenantId: "t1" }).thenRejects("CONFLICT");
  });
});

describe("conversation: postMessage", () => {
  it("emits message.received then assistant.started", () => {
    const state = spec(decider).given([created]).when(post()).then([received, started]);
    expect(conversationStatus(state)).toBe("replying");
    expect(runningReply(state)).toMatchObject({ replyId: "r1", nextIndex: 0, text: "", maxTokens: 32, prompt: "hi there", userId: "u1" });
  });
  it("on a conversation that does not exist is NOT_FOUND", () => {
    spec(decider).given([]).when(post()).thenRejects("NOT_FOUND");
  });
  it("the same clientMessageId with the same text is the first answer (no events)", () => {
    spec(decider).given(running).when(post({ messageId: "m9", replyId: "r9" })).then([]);
    spec(decider).given([...running, completed]).when(post({ messageId: "m9", replyId: "r9" })).then([]);
    const state = fold(decider, [...running, completed].map((e) => decider.parseEvent(e)));
    expect(lookupClientMessage(state, "c1", "hi there")).toMatchObject({ kind: "duplicate", messageId: "m1", replyId: "r1", receivedVersion: 2 });
    expect(lookupClientMessage(state, "c1", "other")).toEqual({ kind: "conflict" });
    expect(lookupClientMessage(state, "c2", "hi there")).toEqual({ kind: "new" });
  });
  it("the same clientMessageId with a different text is a CONFLICT", () => {
    spec(decider).given([...running, completed]).when(post({ text: "something else", messageId: "m9", replyId: "r9" })).thenRejects("CONFLICT", "different text");
  });
  it("a new message while a reply runs is a CONFLICT", () => {
    spec(decider).given(running).when(post({ clientMessageId: "c2", messageId: "m2", replyId: "r2" })).thenRejects("CONFLICT", "reply is running");
  });
  it("a new message after the reply ended is accepted", () => {
    const events = spec(decider)
      .given([...running, completed])
      .when(post({ clientMessageId: "c2", messageId: "m2", replyId: "r2", text: "again" }))
      .thenEvents();
    expect(events.map((e) => e.type)).toEqual(["message.received", "assistant.started"]);
  });
  it("validates the command (clientMessageId charset, text length, maxTokens)", () => {
    expect(() => spec(decider).given([created]).when(post({ clientMessageId: "bad id!" }))).toThrow(/invalid conversation command/);
    expect(() => spec(decider).given([created]).when(post({ text: "" }))).toThrow();
    expect(() => spec(decider).given([created]).when(post({ maxTokens: 0 }))).toThrow();
  });
  it("on an archived conversation is a CONFLICT", () => {
    spec(decider).given([created, { type: "conversation.archived", data: { userId: "u1" } }]).when(post()).thenRejects("CONFLICT", "archived");
  });
});

describe("conversation: reject (ledger refused the reservation)", () => {
  it("records message.rejected", () => {
    spec(decider)
      .given([created])
      .when({ type: "reject", at, clientMessageId: "c1", code: "QUOTA_EXCEEDED", message: "daily quota exhausted" })
      .then([{ type: "message.rejected", data: { clientMessageId: "c1", code: "QUOTA_EXCEEDED", message: "daily quota exhausted" } }]);
  });
  it("a rejected clientMessageId may be sent again later", () => {
    const rejected = { type: "message.rejected", data: { clientMessageId: "c1", code: "CONCURRENCY_LIMIT", message: "busy" } };
    spec(decider).given([created, rejected]).when(post()).then([received, started]);
  });
  it("rejecting an accepted message is a CONFLICT", () => {
    spec(decider).given(running).when({ type: "reject", at, clientMessageId: "c1", code: "QUOTA_EXCEEDED", message: "x" }).thenRejects("CONFLICT");
  });
  it("on a conversation that does not exist is NOT_FOUND", () => {
    spec(decider).given([]).when({ type: "reject", at, clientMessageId: "c1", code: "QUOTA_EXCEEDED", message: "x" }).thenRejects("NOT_FOUND");
  });
});

describe("conversation: appendDelta", () => {
  it("appends the next index and accumulates the text", () => {
    const s = spec(decider).given([...running, delta(0, "a")]).when({ type: "appendDelta", at, replyId: "r1", index: 1, text: "b" }).then([delta(1, "b")]);
    expect(runningReply(s)).toMatchObject({ nextIndex: 2, text: "ab" });
  });
  it("starts at index 0", () => {
    spec(decider).given(running).when({ type: "appendDelta", at, replyId: "r1", index: 0, text: "a" }).then([delta(0, "a")]);
  });
  it("a duplicate index is an idempotent no-op", () => {
    spec(decider).given([...running, delta(0, "a"), delta(1, "b")]).when({ type: "appendDelta", at, replyId: "r1", index: 0, text: "a" }).then([]);
  });
  it("a gap is rejected", () => {
    spec(decider).given([...running, delta(0, "a")]).when({ type: "appendDelta", at, replyId: "r1", index: 2, text: "c" }).thenRejects("CONFLICT", "gap");
  });
  it("for another reply is a CONFLICT", () => {
    spec(decider).given(running).when({ type: "appendDelta", at, replyId: "rX", index: 0, text: "a" }).thenRejects("CONFLICT");
  });
  it("with nothing running is a CONFLICT, for a finished reply a no-op", () => {
    spec(decider).given([created]).when({ type: "appendDelta", at, replyId: "r1", index: 0, text: "a" }).thenRejects("CONFLICT");
    spec(decider).given([...running, completed]).when({ type: "appendDelta", at, replyId: "r1", index: 5, text: "a" }).then([]);
  });
});

describe("conversation: completeReply", () => {
  it("completes with the accumulated text", () => {
    const s = spec(decider)
      .given([...running, delta(0, "a"), delta(1, "b")])
      .when({ type: "completeReply", at, replyId: "r1", finishReason: "stop", usage, costMicros: 10 })
      .then([completed]);
    expect(conversationStatus(s)).toBe("idle");
    expect(s.context.totals).toMatchObject({ replies: 1, inputTokens: 6, outputTokens: 2, costMicros: 10 });
    expect(messageRecord(s, "c1")?.replyStatus).toBe("completed");
  });
  it("a repeat for a finished reply is a no-op", () => {
    spec(decider).given([...running, completed]).when({ type: "completeReply", at, replyId: "r1", finishReason: "stop", usage, costMicros: 10 }).then([]);
  });
  it("for another reply is a CONFLICT; with nothing running a CONFLICT", () => {
    spec(decider).given(running).when({ type: "completeReply", at, replyId: "rX", finishReason: "stop", usage, costMicros: 1 }).thenRejects("CONFLICT");
    spec(decider).given([created]).when({ type: "completeReply", at, replyId: "rX", finishReason: "stop", usage, costMicros: 1 }).thenRejects("CONFLICT");
  });
  it("rejects negative or fractional money", () => {
    expect(() => spec(decider).given(running).when({ type: "completeReply", at, replyId: "r1", finishReason: "stop", usage, costMicros: 1.5 })).toThrow();
  });
});

describe("conversation: cancelReply", () => {
  it("cancels the running reply, billed for what was generated", () => {
    const s = spec(decider)
      .given([...running, delta(0, "a")])
      .when({ type: "cancelReply", at, usage: { inputTokens: 6, outputTokens: 1 }, costMicros: 8 })
      .then([{ type: "assistant.cancelled", data: { messageId: "r1", usage: { inputTokens: 6, outputTokens: 1 }, costMicros: 8 } }]);
    expect(conversationStatus(s)).toBe("idle");
    expect(messageRecord(s, "c1")?.replyStatus).toBe("cancelled");
  });
  it("with nothing running is a no-op (cancelled:false)", () => {
    spec(decider).given([created]).when({ type: "cancelReply", at, usage, costMicros: 0 }).then([]);
    spec(decider).given([...running, completed]).when({ type: "cancelReply", at, replyId: "r1", usage, costMicros: 0 }).then([]);
  });
  it("naming another reply is a no-op", () => {
    spec(decider).given(running).when({ type: "cancelReply", at, replyId: "old", usage, costMicros: 0 }).then([]);
  });
  it("on a conversation that does not exist is NOT_FOUND", () => {
    spec(decider).given([]).when({ type: "cancelReply", at, usage, costMicros: 0 }).thenRejects("NOT_FOUND");
  });
});

describe("conversation: failReply", () => {
  it("fails the running reply with usage so far", () => {
    spec(decider)
      .given(running)
      .when({ type: "failReply", at, usage: { inputTokens: 6, outputTokens: 0 }, costMicros: 6, code: "UNAVAILABLE", message: "worker died" })
      .then([
        {
          type: "assistant.failed",
          data: { messageId: "r1", usage: { inputTokens: 6, outputTokens: 0 }, costMicros: 6, code: "UNAVAILABLE", message: "worker died" },
        },
      ]);
  });
  it("a repeat for a finished reply is a no-op; nothing running is a CONFLICT", () => {
    spec(decider).given([...running, completed]).when({ type: "failReply", at, replyId: "r1", usage, costMicros: 0, code: "X", message: "y" }).then([]);
    spec(decider).given([created]).when({ type: "failReply", at, usage, costMicros: 0, code: "X", message: "y" }).thenRejects("CONFLICT");
  });
});

describe("conversation: archive", () => {
  it("archives an idle conversation", () => {
    const s = spec(decider).given([created]).when({ type: "archive", at, userId: "u1" }).then([{ type: "conversation.archived", data: { userId: "u1" } }]);
    expect(conversationStatus(s)).toBe("archived");
  });
  it("archiving twice is a no-op", () => {
    spec(decider).given([created, { type: "conversation.archived", data: { userId: "u1" } }]).when({ type: "archive", at }).then([]);
  });
  it("while a reply runs is a CONFLICT; unknown conversation NOT_FOUND", () => {
    spec(decider).given(running).when({ type: "archive", at }).thenRejects("CONFLICT");
    spec(decider).given([]).when({ type: "archive", at }).thenRejects("NOT_FOUND");
  });
});

describe("conversation: evolve and snapshots", () => {
  it("counts versions and remembers the version of message.received", () => {
    const s = fold(decider, [...running, delta(0, "a")].map((e) => decider.parseEvent(e)));
    expect(decider.versionOf(s)).toBe(4);
    expect(messageRecord(s, "c1")).toMatchObject({ messageId: "m1", replyId: "r1", version: 2, replyStatus: "streaming" });
  });
  it("refuses an event it cannot read", () => {
    expect(() => decider.parseEvent({ type: "nope", data: {} })).toThrow();
    expect(() => decider.parseEvent({ type: "assistant.delta", data: { messageId: "r1", index: -1, text: "" } })).toThrow();
  });
  it("a snapshot round-trips through JSON and decides the same", () => {
    const s = fold(decider, [...running, delta(0, "a")].map((e) => decider.parseEvent(e)));
    const back = decider.fromSnapshot(JSON.parse(JSON.stringify(decider.toSnapshot(s))));
    expect(back.value).toEqual(s.value);
    expect(back.context).toEqual(s.context);
    const cmd = decider.parseCommand({ type: "appendDelta", at, replyId: "r1", index: 1, text: "b" });
    expect(decider.decide(cmd, back)).toEqual(decider.decide(cmd, s));
    expect(() => decider.fromSnapshot({ value: "idle", context: { version: "x" } })).toThrow(/snapshot/);
  });
});

describe("conversation: ids come from the sender and are checked", () => {
  it("a reused messageId or replyId is a CONFLICT", () => {
    const done = [...running, completed];
    spec(decider).given(done).when(post({ clientMessageId: "c2", messageId: "m2", replyId: "r1" })).thenRejects("CONFLICT", "already used");
    spec(decider).given(done).when(post({ clientMessageId: "c2", messageId: "m1", replyId: "r2" })).thenRejects("CONFLICT", "already used");
    spec(decider).given(done).when(post({ clientMessageId: "c2", messageId: "r1", replyId: "r2" })).thenRejects("CONFLICT", "already used");
    spec(decider).given([created]).when(post({ messageId: "same", replyId: "same" })).thenRejects("CONFLICT", "already used");
  });
});

describe("conversation: hostile clientMessageIds", () => {
  it("__proto__ is an ordinary clientMessageId, also after a snapshot round-trip", () => {
    const s = spec(decider).given([created]).when(post({ clientMessageId: "__proto__" })).thenEvents();
    const state = fold(decider, [created, ...s].map((e) => decider.parseEvent(e)));
    const back = decider.fromSnapshot(JSON.parse(JSON.stringify(decider.toSnapshot(state))));
    for (const st of [state, back]) {
      expect(lookupClientMessage(st, "__proto__", "hi there")).toMatchObject({ kind: "duplicate", messageId: "m1", replyId: "r1" });
      expect(lookupClientMessage(st, "constructor", "hi there")).toEqual({ kind: "new" });
    }
  });
});
