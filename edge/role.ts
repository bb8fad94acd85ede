import type { Config } from "../core/config.js";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { createRedis, type RedisClient } from "../core/redis/connection.js";
import { createBlobStore } from "../core/blob/create.js";
import { createArchivedEventReader } from "../core/redis/archived-reader.js";
import { createRedisEventStore } from "../core/redis/event-store.js";
import { budgetDecider, ledgerDecider } from "../actors/ledger/decider.js";
import { CommandApi } from "../actors/runtime/command-api.js";
import { CommandBus } from "../actors/runtime/command-bus.js";
import { LedgerPort } from "../actors/runtime/ledger-port.js";
import { ReplyListener } from "../actors/runtime/reply-bus.js";
import { AggregateRepository } from "../actors/runtime/repository.js";
import { noSnapshots } from "../actors/runtime/snapshots.js";
import { openDatabase, type OpenedDb } from "../projections/db.js";
import { projectionStatus } from "../projections/status.js";
import { authenticatorFromConfig } from "./auth/verifier.js";
import { assertNativeUws } from "./uws.js";
import { ownerFromFirstEvent } from "./access.js";
import { olderEventsFrom } from "./fanout/archive.js";
import { createReadModels, postgresCheck } from "./read-models.js";
import { createEdgeServer, type EdgeServer, type EdgeServerOptions } from "./server.js";
import { createEdgeDeps } from "./wiring.js";
import type { EdgeDeps } from "./deps.js";
import type { Principal } from "./auth/principal.js";

/**
 * The `edge` role (CONTRACT §1): HTTP, SSE and Socket.IO for any number of stateless edge nodes.
 * Commands go to the partition command streams and the decision comes back on this node's reply
 * stream; quota views are folded from the ledger streams; read models come from Postgres.
 * `tributary edge` runs this alone; `tributary start` can run it beside the other roles, passing
 * its own Redis and database so the process holds one of each.
 */
export interface EdgeRoleOptions {
  config: Config;
  log: Logger;
  /** Reuse a client (start); otherwise the role opens and closes its own. */
  redis?: RedisClient;
  db?: OpenedDb;
  server?: EdgeServerOptions;
}

export interface EdgeRole {
  port: number;
  deps: EdgeDeps;
  server: EdgeServer;
  stop(): Promise<void>;
}

export async function startEdgeRole(o: EdgeRoleOptions): Promise<EdgeRole> {
  // Before any connection is opened: a missing native build is a one-line start-up error.
  assertNativeUws();
  const { config } = o;
  // Key material next: a misconfigured identity setup is a usage error before anything is opened.
  const auth = authenticatorFromConfig(config);
  const log = o.log.child({ role: "edge" });
  const closers: Array<() => Promise<void>> = [];
  const redis = o.redis ?? createRedis(config, { name: "tributary-edge" });
  if (!o.redis) {
    // Failures surface through the breaker and /readyz, not as unhandled 'error' events.
    redis.on("error", (e: unknown) => log.warn({ err: errorMessage(e) }, "redis connection error"));
    closers.push(async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  }
  try {
    const store = createRedisEventStore(redis, { partitions: config.PARTITIONS, idemTtlMs: config.IDEM_TTL, durability: config.DURABILITY });
    const common = { store, snapshots: noSnapshots, snapshotEvery: config.SNAPSHOT_EVERY, log };
    const ledgers = new AggregateRepository({ kind: "ledger", decider: ledgerDecider, ...common });
    const budgets = new AggregateRepository({ kind: "ledger", decider: budgetDecider, ...common });
    const replies = new ReplyListener(redis, log);
    replies.start();
    closers.push(() => replies.stop());
    const commands = new CommandApi(new CommandBus(redis, config.PARTITIONS, replies), new LedgerPort(ledgers, budgets, ledgerDecider, budgetDecider));

    const db = o.db ?? (await openDatabase(config, { max: 8, applicationName: "tributary-edge" }));
    if (!o.db) closers.push(() => db.close());

    // Reads that may reach before Redis's retention window (JSON pages, SSE/Socket.IO resume, the
    // owner of a fully archived conversation) go through the archive + Redis reader (I6).
    const archived = createArchivedEventReader(redis, createBlobStore(config), config.PARTITIONS);
    const deps = createEdgeDeps({
      config,
      log,
      redis,
      commands,
      readModels: createReadModels(db.db),
      eventStore: archived,
      checks: [postgresCheck(db.db)],
      auth,
      access: { fallback: ownerFromFirstEvent(archived) },
      operations: { history: archived, projectionStatus: () => projectionStatus(db.db, redis, config.PARTITIONS) },
    });
    // Each Socket.IO connection is a session actor: opened, resumed on recovery, closed when it
    // can no longer be recovered. Bookkeeping never delays or fails a connection.
    const sessionCommand = (kind: "open" | "resume" | "close", s: { sessionId: string; principal: { tenantId: string; userId: string; tier: "anonymous" | "registered" | "privileged" }; transport?: string; reason?: string }) =>
      commands
        .session(kind, { sessionId: s.sessionId, tenantId: s.principal.tenantId, userId: s.principal.userId, tier: s.principal.tier, ...(s.transport ? { transport: s.transport } : {}), ...(s.reason ? { reason: s.reason } : {}) })
        .catch((e: unknown) => log.warn({ err: errorMessage(e), sessionId: s.sessionId }, "session command not sent"));
    const sessions = {
      opened: (s: { sessionId: string; principal: Principal; transport: string }) => sessionCommand("open", s),
      resumed: (s: { sessionId: string; principal: Principal; transport: string }) => sessionCommand("resume", s),
      closed: async (s: { sessionId: string; principal: Principal; reason: string; recoverable: boolean }) => {
        if (!s.recoverable) await sessionCommand("close", s);
      },
    };
    const server = createEdgeServer(deps, { olderEvents: olderEventsFrom(archived), sessions, ...(o.server ?? {}) });
    closers.push(() => server.close());
    const port = await server.listen(config.HOST, config.PORT);
    return {
      port,
      deps,
      server,
      async stop() {
        for (const fn of closers.reverse()) await fn().catch((e: unknown) => log.warn({ err: errorMessage(e) }, "edge shutdown step failed"));
      },
    };
  } catch (e) {
    for (const fn of closers.reverse()) await fn().catch(() => undefined);
    throw e;
  }
}
