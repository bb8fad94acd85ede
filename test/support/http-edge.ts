import { randomUUID } from "node:crypto";
import { loadConfig, type Config } from "../../core/config.js";
import { TributaryError } from "../../core/errors.js";
import { createLogger } from "../../core/logger.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import type { EventStore } from "../../core/event-store.js";
import type {
  Commands,
  ConversationDetail,
  ConversationSummary,
  EdgeDeps,
  LedgerView,
  ReadinessCheck,
  ReadModels,
  SpendReport,
} from "../../edge/deps.js";
import { createEdgeServer, type EdgeServer } from "../../edge/server.js";
import { createEdgeDeps, type EdgeWiring } from "../../edge/wiring.js";
import { testAuthenticator, TEST_JWT_SECRET } from "./tokens.js";
import { testRedis, type TestRedis } from "./redis.js";

/**
 * An edge HTTP server for tests: real uWS on 127.0.0.1 port 0, real Redis (own key prefix), real
 * event store; the command and read-model interfaces are in-memory fakes that write real events,
 * so access checks (which read the first event from Redis) run against the real stream.
 *
 *   const h = await startHttpEdge();
 *   afterAll(() => h.stop());
 *   const r = await fetch(`${h.url}/healthz`);
 */
export interface HttpEdgeHarness {
  url: string;
  port: number;
  redis: TestRedis;
  store: EventStore;
  deps: EdgeDeps;
  server: EdgeServer;
  config: Config;
  /** Toggle the fake Postgres check (and the breaker's view after `deps.gateway.breaker.probe()`). */
  postgres: { up: boolean };
  fakes: FakeBackend;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  gateway?: EdgeWiring["gateway"];
  /** Use this Redis client for the edge instead of the test one (e.g. one pointing at a dead port). */
  edgeRedis?: RedisClient;
  /** Also attach the SSE route (fan-out) [false]. */
  sse?: boolean;
  /** Also attach Socket.IO [false]. */
  socketIo?: boolean;
  /** Real command side instead of the fake (e.g. an ActorWorker + CommandApi on the same Redis). */
  commands?: (r: TestRedis, config: Config) => Promise<{ commands: Commands; stop(): Promise<void> }>;
}

/** In-memory commands + read models writing real `conversation.created` / `message.received` events. */
export class FakeBackend implements Commands, ReadModels {
  readonly conversations = new Map<string, ConversationSummary & { tenantId: string; messages: ConversationDetail["messages"] }>();
  readonly idempotency = new Map<string, string>();
  readonly ledgers = new Map<string, LedgerView>();
  readonly calls: Array<{ method: string; input: unknown }> = [];
  /** When set, read-model queries throw it (a dead database connection, say). */
  readFailure: unknown = undefined;
  constructor(private readonly store: EventStore) {}

  async createConversation(input: Parameters<Commands["createConversation"]>[0]) {
    this.calls.push({ method: "createConversation", input });
    const idemKey = input.idempotencyKey ? `${input.tenantId}:${input.userId}:${input.idempotencyKey}` : undefined;
    const existing = idemKey ? this.idempotency.get(idemKey) : undefined;
    if (existing) {
      const c = this.conversations.get(existing)!;
      return { id: c.id, title: c.title, model: c.model, createdAt: c.createdAt };
    }
    const id = `c-${randomUUID()}`;
    const at = new Date().toISOString();
    const title = input.title ?? "New conversation";
    const model = input.model ?? "sim-1";
    await this.store.append(
      { kind: "conversation", id },
      0,
      [{ type: "conversation.created", at, data: { title, model, ownerId: input.userId, tenantId: input.tenantId, projectId: input.projectId ?? null } }],
      `create-${id}`,
    );
    this.conversations.set(id, { id, title, model, ownerId: input.userId, tenantId: input.tenantId, status: "active", createdAt: at, updatedAt: at, messages: [] });
    if (idemKey) this.idempotency.set(idemKey, id);
    return { id, title, model, createdAt: at };
  }

  async postMessage(input: Parameters<Commands["postMessage"]>[0]) {
    this.calls.push({ method: "postMessage", input });
    if (input.text === "reject-me") throw new TributaryError("CONFLICT", "a reply is running");
    if (input.text === "pend-me") return { kind: "pending" as const, body: { commandId: `cmd-${input.clientMessageId}`, status: "pending" as const } };
    const head = await this.store.head({ kind: "conversation", id: input.conversationId });
    const messageId = `m-${randomUUID()}`;
    const res = await this.store.append(
      { kind: "conversation", id: input.conversationId },
      head.version,
      [{ type: "message.received", at: new Date().toISOString(), data: { messageId, clientMessageId: input.clientMessageId, userId: input.userId, text: input.text } }],
      `msg-${input.conversationId}-${input.clientMessageId}`,
    );
    return {
      kind: "accepted" as const,
      status: (res.duplicate ? 200 : 201) as 200 | 201,
      body: { messageId, replyId: `r-${messageId}`, offset: res.offsets[0] ?? "0" },
    };
  }

  async cancel(input: Parameters<Commands["cancel"]>[0]) {
    this.calls.push({ method: "cancel", input });
    return { cancelled: false };
  }

  private ledger(tenantId: string, userId: string): LedgerView {
    const key = `${tenantId}:${userId}`;
    let l = this.ledgers.get(key);
    if (!l) {
      l = {
        tier: "registered",
        limits: { dailyTokens: 200_000, maxConcurrent: 4 },
        used: { tokens: 0, costMicros: 0 },
        reserved: { tokens: 0 },
        remaining: { tokens: 200_000 },
        resetsAt: "2030-01-01T00:00:00.000Z",
      };
      this.ledgers.set(key, l);
    }
    return l;
  }

  async setQuota(input: Parameters<Commands["setQuota"]>[0]) {
    this.calls.push({ method: "setQuota", input });
    const l = this.ledger(input.tenantId, input.userId);
    if (input.tier) l.tier = input.tier;
    if (input.dailyTokens !== undefined) l.limits.dailyTokens = input.dailyTokens;
    if (input.maxConcurrent !== undefined) l.limits.maxConcurrent = input.maxConcurrent;
    l.remaining.tokens = l.limits.dailyTokens + (input.topUpTokens ?? 0) - l.used.tokens;
    return l;
  }

  async getLedger(input: { tenantId: string; userId: string }) {
    return this.ledger(input.tenantId, input.userId);
  }

  async listConversations(q: Parameters<ReadModels["listConversations"]>[0]) {
    this.calls.push({ method: "listConversations", input: q });
    if (this.readFailure !== undefined) throw this.readFailure;
    const all = [...this.conversations.values()]
      .filter((c) => c.tenantId === q.tenantId && (q.ownerId === undefined || c.ownerId === q.ownerId))
      .sort((a, b) => a.id.localeCompare(b.id));
    const start = q.cursor ? all.findIndex((c) => c.id > q.cursor!) : 0;
    const slice = start < 0 ? [] : all.slice(start, start + q.limit);
    const next = start >= 0 && start + q.limit < all.length ? slice[slice.length - 1]?.id ?? null : null;
    return { items: slice.map(({ messages: _m, tenantId: _t, ...rest }) => rest), nextCursor: next };
  }

  async getConversation(q: Parameters<ReadModels["getConversation"]>[0]) {
    const c = this.conversations.get(q.conversationId);
    if (!c || c.tenantId !== q.tenantId) return undefined;
    const { tenantId: _t, ...rest } = c;
    return rest;
  }

  async spend(q: Parameters<ReadModels["spend"]>[0]): Promise<SpendReport> {
    this.calls.push({ method: "spend", input: q });
    const totals = { messages: 1, inputTokens: 2, outputTokens: 3, costMicros: 4 };
    return { rows: [{ [q.groupBy]: "x", ...totals }], totals };
  }
}

export async function startHttpEdge(opts: HarnessOptions = {}): Promise<HttpEdgeHarness> {
  const redis = await testRedis("single");
  const config = loadConfig({
    PARTITIONS: "4",
    MAX_BODY_BYTES: "1024",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "silent",
    ...(opts.env ?? {}),
  });
  const store = createRedisEventStore(redis.client, { partitions: config.PARTITIONS, idemTtlMs: 60_000 });
  const fakes = new FakeBackend(store);
  const postgres = { up: true };
  const pgCheck: ReadinessCheck = {
    name: "postgres",
    async check() {
      if (!postgres.up) throw new Error("connection refused");
    },
  };
  const real = opts.commands ? await opts.commands(redis, config) : undefined;
  const deps = createEdgeDeps({
    config,
    log: createLogger("silent"),
    redis: opts.edgeRedis ?? redis.client,
    commands: real?.commands ?? fakes,
    readModels: fakes,
    eventStore: store,
    checks: [pgCheck],
    auth: testAuthenticator(),
    // Probes run only when a test calls `deps.gateway.breaker.probe()`: no timer races an assertion.
    gateway: { breakerIntervalMs: 3_600_000, ...(opts.gateway ?? {}) },
  });
  const server = createEdgeServer(deps, { sse: opts.sse ?? false, socketIo: opts.socketIo ?? false });
  const port = await server.listen("127.0.0.1", 0);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    redis,
    store,
    deps,
    server,
    config,
    postgres,
    fakes,
    async stop() {
      await server.close();
      await real?.stop();
      await redis.cleanup();
    },
  };
}

/** fetch with a bearer token and JSON body; returns status, headers and parsed JSON (or text). */
export async function call(
  url: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(url, { method: init.method ?? (body ? "POST" : "GET"), headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}
