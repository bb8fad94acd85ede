import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { RecordedEvent } from "../../core/envelope.js";
import { projectLedgerId, userLedgerId } from "../../core/events/ledger.js";
import { partitionOf } from "../../core/partition.js";
import type { CommandApi, ReplyResponder } from "../../actors/runtime/index.js";
import type { ConversationProcess } from "../../actors/runtime/conversation-process.js";
import { runningKey } from "../../actors/runtime/running-set.js";
import { startOf } from "../../actors/responders/adapters.js";
import type { ReplyHandle, ReplyRequest, ReplySink, ResponderChunk, ResponderRequest } from "../../actors/responders/types.js";
import { startInProcessWorker, type InProcessWorker } from "../support/in-process-worker.js";
import { testRedis, REDIS_MODES, type TestRedis } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

/**
 * A cancel that arrives while a reply is still being set up: its runner is loading the reply, or
 * the responder was started but has produced nothing yet (a slow first token). The reply must end
 * exactly once as `assistant.cancelled` (docs/api.md: `{cancelled: true}`, billed for what was
 * generated — here nothing but the prompt), nothing may be appended after that end (not even by a
 * responder that pushes after being stopped), the ledgers settle exactly once with nothing left
 * reserved, and a responder that was started is stopped.
 */

const FIRST_PIECE_MS = 300;
const INPUT_TOKENS = 5;
const TERMINAL = ["assistant.completed", "assistant.cancelled", "assistant.failed"];
const config = { PARTITIONS: 4, MAX_DELIVERIES: 3, SNAPSHOT_EVERY: 1000, SIM_MAX_TOKENS: 64 };

/** What a test's responder did: how often it was started and stopped (or aborted). */
interface Probe {
  starts: number;
  stops: number;
}

type Behaviour =
  /** Push form: the first piece comes FIRST_PIECE_MS after start; stop() cancels the timer. */
  | "push"
  /** Push form that ignores stop(): its pieces and its done still arrive, after the cancel. */
  | "push-ignores-stop"
  /** Pull form (adapted by the runtime): awaits FIRST_PIECE_MS without watching the signal, then yields. */
  | "stream";

function pushStart(probe: Probe, honourStop: boolean) {
  return (req: ReplyRequest, sink: ReplySink): ReplyHandle => {
    probe.starts++;
    const timers: NodeJS.Timeout[] = [];
    timers.push(
      setTimeout(() => {
        sink.push({ kind: "delta", text: "late " });
        sink.push({ kind: "done", finishReason: "stop", usage: { inputTokens: INPUT_TOKENS, outputTokens: 1 } });
        sink.end();
      }, FIRST_PIECE_MS),
    );
    void req;
    return {
      stop: () => {
        probe.stops++;
        if (honourStop) for (const t of timers) clearTimeout(t);
      },
    };
  };
}

function slowStream(probe: Probe) {
  return async function* (req: ResponderRequest): AsyncGenerator<ResponderChunk> {
    probe.starts++;
    req.signal.addEventListener("abort", () => probe.stops++, { once: true });
    await new Promise((r) => setTimeout(r, FIRST_PIECE_MS)); // not abortable: the adapter must drop what follows
    yield { kind: "delta", text: "late " };
    yield { kind: "done", finishReason: "stop", usage: { inputTokens: INPUT_TOKENS, outputTokens: 1 } };
  };
}

/** One worker, the behaviour chosen per test (the runtime adapts a pull form with this same startOf). */
function switchable(state: { behaviour: Behaviour; probe: Probe }): ReplyResponder {
  return {
    resumable: true,
    stream: (req) => slowStream(state.probe)(req),
    start: (req, sink) => {
      switch (state.behaviour) {
        case "push":
          return pushStart(state.probe, true)(req, sink);
        case "push-ignores-stop":
          return pushStart(state.probe, false)(req, sink);
        case "stream":
          return startOf(slowStream(state.probe))(req, sink);
      }
    },
    usageSoFar: (_prompt, deltas) => ({ inputTokens: INPUT_TOKENS, outputTokens: deltas }),
  };
}

describe.each(REDIS_MODES)("cancel while a reply is still loading, on %s Redis", (mode) => {
  let r: TestRedis;
  let w: InProcessWorker | undefined;
  let api: CommandApi;
  const log = createLogger("silent");
  const state: { behaviour: Behaviour; probe: Probe } = { behaviour: "push", probe: { starts: 0, stops: 0 } };
  /** Every ledger commit the process made, by reservation id. */
  const commits = new Map<string, number>();
  /**
   * While set, the first load of this conversation by its reply runner waits for `release` (and
   * then fails if `fail` is set: a Redis error while the reply loads).
   */
  let gate: { id: string; held: boolean; fail: boolean; release: () => void; released: Promise<void> } | undefined;
  const store = () => createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });

  beforeAll(async () => {
    r = await testRedis(mode);
    w = await startInProcessWorker(r, { config, store: store(), responder: switchable(state), log });
    api = w.api;
    const port = w.worker.ledgerPort;
    const commit = port.commit.bind(port);
    port.commit = async (s) => {
      commits.set(s.reservationId, (commits.get(s.reservationId) ?? 0) + 1);
      return commit(s);
    };
    // The runner's first load happens synchronously when postMessage starts it, right after the
    // runner is registered; postMessage's own loads come before that. Gating exactly that load
    // holds the reply in its loading step for as long as a test needs.
    const repo = w.worker.conversations;
    const runners = (w.worker.process as unknown as { runners: Map<string, unknown> }).runners;
    const load = repo.load.bind(repo);
    repo.load = (id, opts) => {
      if (gate && !gate.held && gate.id === id && runners.has(id)) {
        const g = gate;
        g.held = true;
        return g.released.then(() => (g.fail ? Promise.reject(new Error("connection lost while loading")) : load(id, opts)));
      }
      return load(id, opts);
    };
  });

  afterAll(async () => {
    gate?.release();
    await w?.stop();
    await r?.cleanup();
  });

  const events = (id: string): Promise<RecordedEvent[]> => store().read({ kind: "conversation", id });
  const runnerOf = (id: string) =>
    (w!.worker.process as unknown as { runners: Map<string, { stopped: boolean; responder: unknown }> }).runners.get(id);

  async function post(tenantId: string, userId: string) {
    const conv = await api.createConversation({ tenantId, userId, projectId: "p1" });
    const res = await api.postMessage({ conversationId: conv.id, tenantId, userId, tier: "registered", text: "hello there", clientMessageId: "m1", maxTokens: 32 });
    if (res.kind !== "accepted") throw new Error(`postMessage: ${res.kind}`);
    expect(res.status).toBe(201);
    return { id: conv.id, replyId: res.body.replyId };
  }

  /** Everything the contract asks of a reply cancelled before it produced anything. */
  async function expectCancelledOnce(tenantId: string, userId: string, id: string, replyId: string) {
    // Past the moment the responder would have pushed: anything appended late would be there now.
    await new Promise((res) => setTimeout(res, FIRST_PIECE_MS + 200));
    const evs = await events(id);
    expect(evs.map((e) => e.type)).toEqual(["conversation.created", "message.received", "assistant.started", "assistant.cancelled"]);
    expect(evs.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    expect(evs.filter((e) => TERMINAL.includes(e.type))).toHaveLength(1);
    const end = evs[3]!;
    expect(end.data).toMatchObject({ messageId: replyId, usage: { inputTokens: INPUT_TOKENS, outputTokens: 0 } });
    expect(end.meta?.commandId).toBe(`end:${replyId}`);

    // Settled exactly once, on both ledgers, and nothing stays reserved.
    expect(commits.get(replyId)).toBe(1);
    const ledger = await store().read({ kind: "ledger", id: userLedgerId(tenantId, userId) });
    const mine = (type: string) => ledger.filter((e) => e.type === type && (e.data as { reservationId?: string }).reservationId === replyId);
    expect(mine("ledger.reserved")).toHaveLength(1);
    expect(mine("ledger.committed")).toHaveLength(1);
    expect(mine("ledger.committed")[0]?.data).toMatchObject({ tokens: INPUT_TOKENS });
    const budget = await store().read({ kind: "ledger", id: projectLedgerId(tenantId, "p1") });
    expect(budget.filter((e) => e.type === "budget.committed" && (e.data as { reservationId?: string }).reservationId === replyId)).toHaveLength(1);
    const quota = await api.getLedger({ tenantId, userId });
    expect(quota.reserved.tokens).toBe(0);
    expect(quota.used.tokens).toBe(INPUT_TOKENS);

    // The runner is gone and the running mark cleared: the conversation takes the next message.
    expect(runnerOf(id)).toBeUndefined();
    expect(await r.client.sismember(runningKey(partitionOf(id, config.PARTITIONS)), id)).toBe(0);
    expect((await api.cancel({ conversationId: id, tenantId, userId })).cancelled).toBe(false);
  }

  it.each<Behaviour>(["push", "push-ignores-stop", "stream"])(
    "a %s responder started but silent: cancelled once, stopped, nothing appended after the end",
    async (behaviour) => {
      state.behaviour = behaviour;
      state.probe = { starts: 0, stops: 0 };
      const tenantId = `t-${behaviour}`;
      const { id, replyId } = await post(tenantId, "u1");
      await waitFor(async () => (state.probe.starts === 1 ? true : undefined));
      expect((await events(id)).map((e) => e.type)).not.toContain("assistant.delta");

      const c = await api.cancel({ conversationId: id, tenantId, userId: "u1" });
      expect(c).toEqual({ cancelled: true });
      expect(state.probe.stops).toBe(1);
      await expectCancelledOnce(tenantId, "u1", id, replyId);
      expect(state.probe).toEqual({ starts: 1, stops: 1 });
    },
  );

  /** Posts a message whose runner is held in its loading step; `during` runs while it is held. */
  async function cancelWhileLoading(tenantId: string, o: { fail: boolean; during?: (id: string) => void }) {
    state.behaviour = "push";
    state.probe = { starts: 0, stops: 0 };
    const conv = await api.createConversation({ tenantId, userId: "u1", projectId: "p1" });
    let release!: () => void;
    const released = new Promise<void>((res) => (release = res));
    gate = { id: conv.id, held: false, fail: o.fail, release, released };
    const res = await api.postMessage({ conversationId: conv.id, tenantId, userId: "u1", tier: "registered", text: "hello there", clientMessageId: "m1", maxTokens: 32 });
    if (res.kind !== "accepted") throw new Error(`postMessage: ${res.kind}`);
    expect(gate.held).toBe(true);

    const runner = runnerOf(conv.id);
    const cancelled = api.cancel({ conversationId: conv.id, tenantId, userId: "u1" });
    await waitFor(async () => (runner?.stopped ? true : undefined));
    expect(runner?.responder).toBeUndefined();
    o.during?.(conv.id);
    release(); // the reply finishes loading (or fails to) only now, already cancelled
    expect(await cancelled).toEqual({ cancelled: true });
    gate = undefined;
    await expectCancelledOnce(tenantId, "u1", conv.id, res.body.replyId);
    expect(state.probe).toEqual({ starts: 0, stops: 0 });
  }

  it("a cancel while the runner is still loading the reply: the responder never starts", async () => {
    await cancelWhileLoading("t-loading", { fail: false });
  });

  it("a cancel while the reply loads, and the load fails: the cancel still ends it (not left to the sweep as failed)", async () => {
    await cancelWhileLoading("t-load-fails", { fail: true });
  });

  it("a cancel while the reply loads, and the partition is handed over meanwhile: the retried cancel ends it", async () => {
    // The runner leaves the reply to the partition's next owner; here that is this worker again
    // (it owns every partition), which sees no runner and ends the reply as cancelled.
    await cancelWhileLoading("t-handover", { fail: false, during: (id) => w!.worker.process.releasePartition(partitionOf(id, config.PARTITIONS)) });
  });
});
