import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { ActorWorker, CommandApi, CommandBus, ReplyListener, allPartitionsOwnership, type ReplyResponder } from "../../actors/runtime/index.js";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken, randomIdentity } from "../support/tokens.js";

/**
 * The HTTP routes against the real command side: an ActorWorker deciding commands from the command
 * streams and the CommandApi the `edge` role uses, on one real Redis. Checks that the edge's
 * `Commands` interface and the actor runtime agree, and the contract's message semantics end to end.
 */

/** Pieces released one at a time by the test, so "a reply is running" is a state, not a race. */
function gatedResponder(): { responder: ReplyResponder; release(): void } {
  let open: (() => void) | undefined;
  let gate = new Promise<void>((r) => (open = r));
  return {
    release() {
      open?.();
      gate = new Promise<void>((r) => (open = r));
    },
    responder: {
      async *stream(req) {
        for (let i = req.skip ?? 0; i < 3; i++) {
          await Promise.race([gate, new Promise((r) => req.signal.addEventListener("abort", r, { once: true }))]);
          if (req.signal.aborted) return;
          yield { kind: "delta" as const, text: `w${i} ` };
        }
        yield { kind: "done" as const, finishReason: "stop", usage: { inputTokens: 4, outputTokens: 3 } };
      },
    },
  };
}

let h: HttpEdgeHarness;
const gate = gatedResponder();

beforeAll(async () => {
  h = await startHttpEdge({
    async commands(r, config) {
      const log = createLogger("silent");
      const store = createRedisEventStore(r.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
      const worker = new ActorWorker({
        config,
        redis: r.client,
        store,
        responder: gate.responder,
        ownership: allPartitionsOwnership(config.PARTITIONS),
        log,
        consumer: { blockMs: 100, retryBaseMs: 50, claimIdleMs: 2000 },
      });
      await worker.start();
      const replies = new ReplyListener(r.duplicate(), log);
      replies.start();
      const commands = new CommandApi(new CommandBus(r.client, config.PARTITIONS, replies), worker.ledgerPort);
      return {
        commands,
        async stop() {
          await worker.stop(100);
          await replies.stop();
        },
      };
    },
  });
});
afterAll(async () => {
  await h?.stop();
});

async function eventTypes(id: string, token: string): Promise<Array<{ type: string; offset: string }>> {
  const r = await call(`${h.url}/v1/conversations/${id}/events?format=json&limit=1000`, { token });
  expect(r.status).toBe(200);
  return r.json.events;
}

async function until<T>(fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition never held");
}

describe("HTTP over the real actor runtime", () => {
  it("create, message (201/200/409), reply running (409), cancel (202), events and quota", async () => {
    const me = randomIdentity();
    const token = await mintToken(me);
    const created = await call(`${h.url}/v1/conversations`, { token, body: { title: "real" }, headers: { "idempotency-key": "idem-1" } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const again = await call(`${h.url}/v1/conversations`, { token, body: { title: "real" }, headers: { "idempotency-key": "idem-1" } });
    expect(again.json.id).toBe(id);
    // The access check reads the actor's own conversation.created: other tenants get 404.
    expect((await call(`${h.url}/v1/conversations/${id}/events?format=json`, { token: await mintToken() })).status).toBe(404);

    const url = `${h.url}/v1/conversations/${id}/messages`;
    const first = await call(url, { token, body: { text: "hello there", clientMessageId: "cm-1", maxTokens: 10 } });
    expect(first.status).toBe(201);
    const events = await eventTypes(id, token);
    const received = events.find((e) => e.type === "message.received");
    expect(received?.offset).toBe(first.json.offset);

    const repeat = await call(url, { token, body: { text: "hello there", clientMessageId: "cm-1", maxTokens: 10 } });
    expect(repeat.status).toBe(200);
    expect(repeat.json).toEqual(first.json);
    const changed = await call(url, { token, body: { text: "something else", clientMessageId: "cm-1" } });
    expect(changed.status).toBe(409);
    expect(changed.json.error.code).toBe("CONFLICT");

    await until(async () => ((await eventTypes(id, token)).some((e) => e.type === "assistant.started") ? true : undefined));
    const busy = await call(url, { token, body: { text: "another", clientMessageId: "cm-2" } });
    expect(busy.status).toBe(409);

    gate.release();
    const cancel = await call(`${h.url}/v1/conversations/${id}/cancel`, { token, method: "POST" });
    expect(cancel.status).toBe(202);
    expect(cancel.json).toEqual({ cancelled: true });
    await until(async () => ((await eventTypes(id, token)).some((e) => e.type === "assistant.cancelled") ? true : undefined));
    const nothing = await call(`${h.url}/v1/conversations/${id}/cancel`, { token, method: "POST" });
    expect(nothing.json).toEqual({ cancelled: false });

    const quota = await call(`${h.url}/v1/quota`, { token });
    expect(quota.status).toBe(200);
    expect(quota.json.tier).toBe("registered");
    expect(quota.json.reserved.tokens).toBe(0);
    expect(quota.json.used.tokens).toBeGreaterThan(0);
  });

  it("admin sets a quota in the admin's tenant", async () => {
    const admin = randomIdentity();
    const token = await mintToken({ ...admin, roles: ["admin"] });
    const r = await call(`${h.url}/v1/admin/quotas/someone`, { method: "PUT", token, body: { dailyTokens: 1234, maxConcurrent: 2 } });
    expect(r.status).toBe(200);
    expect(r.json.limits).toEqual({ dailyTokens: 1234, maxConcurrent: 2 });
    const mine = await call(`${h.url}/v1/quota`, { token: await mintToken({ tid: admin.tid, sub: "someone" }) });
    expect(mine.json.limits.dailyTokens).toBe(1234);
    const foreign = await call(`${h.url}/v1/quota`, { token: await mintToken({ sub: "someone" }) });
    expect(foreign.json.limits.dailyTokens).not.toBe(1234);
  });
});
