import { hostname } from "node:os";
import type { BlobStore } from "../../core/blob/index.js";
import type { Config } from "../../core/config.js";
import type { StreamMessage } from "../../core/consumer.js";
import { TributaryError, errorMessage } from "../../core/errors.js";
import type { EventStore } from "../../core/event-store.js";
import { keys } from "../../core/keys.js";
import type { Logger } from "../../core/logger.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { StreamConsumer } from "../../core/redis/consumer.js";
import { conversationDecider, type ConversationCommand, type ConversationDomainEvent, type ConversationState } from "../conversation/index.js";
import { DEFAULT_PRICES, type PriceTable } from "../economics/index.js";
import { budgetDecider, ledgerDecider } from "../ledger/decider.js";
import { sessionDecider, type SessionCommand, type SessionState } from "../session/index.js";
import type { SessionEvent } from "../../core/events/session.js";
import { decodeCommand, type CommandRecord, type CommandResult } from "./command.js";
import { ConversationProcess, fail, ok } from "./conversation-process.js";
import { LedgerPort } from "./ledger-port.js";
import { sendReply } from "./reply-bus.js";
import { AggregateRepository, type EventReader } from "./repository.js";
import type { ReplyResponder } from "./responder.js";
import { blobSnapshotStore, metaSnapshotPointer, noSnapshots } from "./snapshots.js";
import { metaStreamProbe } from "./stream-probe.js";
import type { AggregateKind } from "../../core/keys.js";

/** What the worker needs from partition ownership (core/redis/lease.ts implements it). */
export interface PartitionOwnership {
  start(): Promise<void> | void;
  stop(): Promise<void>;
  owned(): number[];
}

/** How often an owner re-walks its partitions' running sets for replies whose runner died. */
const SWEEP_MS = 10_000;

/** The aggregate a command is addressed to, from its type's prefix (`conversation.postMessage`). */
function aggregateKindOf(type: string): AggregateKind {
  const kind = type.slice(0, type.indexOf("."));
  return kind === "ledger" || kind === "session" ? kind : "conversation";
}

/** Every partition, always: for a single worker and for tests. */
export function allPartitionsOwnership(partitions: number): PartitionOwnership {
  const all = Array.from({ length: partitions }, (_, i) => i);
  return { start: () => undefined, stop: async () => undefined, owned: () => all };
}

export interface WorkerOptions {
  config: Pick<Config, "PARTITIONS" | "MAX_DELIVERIES" | "SNAPSHOT_EVERY" | "SIM_MAX_TOKENS"> & Partial<Pick<Config, "ACTOR_CACHE_SIZE">>;
  redis: RedisClient;
  store: EventStore;
  /** History reader spanning the archive; defaults to the store. */
  reader?: EventReader;
  blobs?: BlobStore;
  responder: ReplyResponder;
  ownership: PartitionOwnership;
  prices?: PriceTable;
  log: Logger;
  consumerName?: string;
  /** Consumer tuning (tests use small values). */
  consumer?: { blockMs?: number; claimIdleMs?: number; retryBaseMs?: number; batchSize?: number };
  /** How often owned partitions are swept for replies whose runner died in this process [10 s]. */
  sweepMs?: number;
  /** Actors idle this long are dropped from memory [5 min]. */
  passivateAfterMs?: number;
}

/**
 * One actor worker process (`tributary worker`): owns partitions through leases (I3), consumes their
 * command streams in the `actors` group (at-least-once, retries, DLQ — I4, I5), runs each command
 * through its aggregate's decider and answers the waiting edge node. Ends replies orphaned by a
 * dead worker when it takes a partition over.
 */
export class ActorWorker {
  readonly conversations: AggregateRepository<ConversationCommand, ConversationDomainEvent, ConversationState>;
  readonly process: ConversationProcess;
  readonly ledgerPort: LedgerPort;
  readonly sessions: AggregateRepository<SessionCommand, SessionEvent, SessionState>;
  private readonly consumer: StreamConsumer;
  private readonly known = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly o: WorkerOptions) {
    const snapshots = o.blobs ? blobSnapshotStore(o.blobs, metaSnapshotPointer(o.redis, o.config.PARTITIONS)) : noSnapshots;
    // One HMGET tells a first load whether there is anything to read (and whether a snapshot exists).
    const probe = metaStreamProbe(o.redis, o.config.PARTITIONS, { snapshots: o.blobs !== undefined });
    const common = {
      store: o.store,
      snapshots,
      probe,
      snapshotEvery: o.config.SNAPSHOT_EVERY,
      ...(o.config.ACTOR_CACHE_SIZE === undefined ? {} : { cacheSize: o.config.ACTOR_CACHE_SIZE }),
      log: o.log,
      ...(o.reader ? { reader: o.reader } : {}),
    };
    const conversations = new AggregateRepository({ kind: "conversation", decider: conversationDecider, ...common });
    const ledgers = new AggregateRepository({ kind: "ledger", decider: ledgerDecider, ...common });
    const budgets = new AggregateRepository({ kind: "ledger", decider: budgetDecider, ...common });
    this.conversations = conversations;
    this.sessions = new AggregateRepository({ kind: "session", decider: sessionDecider, ...common });
    this.ledgerPort = new LedgerPort(ledgers, budgets, ledgerDecider, budgetDecider);
    this.process = new ConversationProcess({
      redis: o.redis,
      partitions: o.config.PARTITIONS,
      conversations,
      decider: conversationDecider,
      ledgers: this.ledgerPort,
      responder: o.responder,
      prices: o.prices ?? DEFAULT_PRICES,
      defaultMaxTokens: o.config.SIM_MAX_TOKENS,
      log: o.log,
    });
    this.consumer = new StreamConsumer({
      redis: o.redis,
      group: "actors",
      consumer: o.consumerName ?? `${hostname()}-${process.pid}`,
      partitions: () => this.ownedAndRecovered(),
      streamOf: (p) => keys.cmd(p),
      handler: (batch) => this.handleBatch(batch),
      maxDeliveries: o.config.MAX_DELIVERIES,
      // A command stream is a queue: what was decided is in the event streams, so an acknowledged
      // command is removed (it held every command ever sent, message texts included).
      trimAcknowledged: true,
      ...(o.consumer ?? {}),
      log: o.log,
    });
  }

  async start(): Promise<void> {
    await this.o.ownership.start();
    await this.maintain();
    this.consumer.start();
    this.timer = setInterval(() => void this.maintain(), Math.min(1000, this.o.sweepMs ?? 1000));
    this.timer.unref();
  }

  /**
   * Partitions we own and have recovered. A newly acquired partition is first walked for replies its
   * previous owner left running; only then are its commands read, so nothing races the recovery.
   */
  private ownedAndRecovered(): number[] {
    const owned = this.o.ownership.owned();
    const ownedSet = new Set(owned);
    for (const p of [...this.known]) {
      if (!ownedSet.has(p)) {
        this.known.delete(p);
        this.process.releasePartition(p);
        this.o.log.info({ partition: p }, "partition lost");
      }
    }
    return owned.filter((p) => this.known.has(p));
  }

  private recovering = new Set<number>();
  private lastSweep = Date.now();
  private maintaining = false;
  private async maintain(): Promise<void> {
    if (this.stopping || this.maintaining) return;
    this.maintaining = true;
    try {
      await this.maintainOnce();
    } finally {
      this.maintaining = false;
    }
  }

  private async maintainOnce(): Promise<void> {
    for (const p of this.o.ownership.owned()) {
      if (this.known.has(p) || this.recovering.has(p)) continue;
      this.recovering.add(p);
      try {
        const n = await this.process.recoverPartition(p);
        this.known.add(p);
        this.o.log.info({ partition: p, recovered: n }, "partition acquired");
      } catch (e) {
        this.o.log.error({ partition: p, err: errorMessage(e) }, "partition recovery failed; will retry");
      } finally {
        this.recovering.delete(p);
      }
    }
    this.ownedAndRecovered();
    // Sweep: a reply whose runner failed (say, Redis dropped mid-append) would otherwise stay
    // "streaming" until its partition changed owner. Every SWEEP_MS the owner ends such replies too.
    if (Date.now() - this.lastSweep >= (this.o.sweepMs ?? SWEEP_MS)) {
      this.lastSweep = Date.now();
      for (const p of [...this.known]) {
        await this.process.recoverPartition(p).catch((e: unknown) => this.o.log.warn({ partition: p, err: errorMessage(e) }, "sweep failed"));
      }
    }
    this.conversations.passivate(this.o.passivateAfterMs ?? 300_000);
  }

  /** Commands of one aggregate run in order; different aggregates of the batch run concurrently. */
  private async handleBatch(batch: StreamMessage[]): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>();
    const groups = new Map<string, Array<{ msg: StreamMessage; cmd: CommandRecord }>>();
    for (const msg of batch) {
      const raw = msg.fields.c;
      if (!raw) {
        failed.set(msg.id, new TributaryError("BAD_REQUEST", "command entry has no field c", { permanent: true }));
        continue;
      }
      let cmd: CommandRecord;
      try {
        cmd = decodeCommand(raw);
      } catch (e) {
        failed.set(msg.id, e);
        continue;
      }
      const list = groups.get(cmd.aggregateId) ?? [];
      list.push({ msg, cmd });
      groups.set(cmd.aggregateId, list);
    }
    await Promise.all(
      [...groups.values()].map(async (list) => {
        for (const { msg, cmd } of list) {
          try {
            const result = await this.dispatch(cmd);
            if (cmd.replyTo) {
              // DURABILITY=wait-replica: an answer may rest on state that was only read (a repeated
              // clientMessageId's first answer, after an append whose WAIT timed out): nothing is
              // acknowledged before a replica has what it rests on (a no-op in `local` mode).
              await this.o.store.confirm?.({ kind: aggregateKindOf(cmd.type), id: cmd.aggregateId });
              await sendReply(this.o.redis, cmd.replyTo, cmd.id, result);
            }
          } catch (e) {
            // Infrastructure trouble: leave it pending; the consumer retries it with backoff and
            // dead-letters it after MAX_DELIVERIES. A last failure is answered so no one waits forever.
            failed.set(msg.id, e);
            this.o.log.warn({ err: errorMessage(e), commandId: cmd.id, conversationId: cmd.aggregateId }, "command failed");
            if (cmd.replyTo && msg.deliveries >= this.o.config.MAX_DELIVERIES) {
              await sendReply(this.o.redis, cmd.replyTo, cmd.id, fail(new TributaryError("UNAVAILABLE", errorMessage(e)))).catch(() => undefined);
            }
          }
        }
      }),
    );
    return failed;
  }

  private async dispatch(cmd: CommandRecord): Promise<CommandResult> {
    if (cmd.type.startsWith("conversation.")) return this.process.handle(cmd);
    if (cmd.type === "ledger.adjust") {
      const p = cmd.payload as { tier?: "anonymous" | "registered" | "privileged"; dailyTokens?: number; maxConcurrent?: number; topUpTokens?: number };
      try {
        const view = await this.ledgerPort.adjust(cmd.id, cmd.at, { tenantId: cmd.principal.tenantId, userId: cmd.principal.userId, ...p });
        return ok(view as unknown as Record<string, unknown>);
      } catch (e) {
        if (e instanceof TributaryError && e.status < 500) return fail(e);
        throw e;
      }
    }
    if (cmd.type.startsWith("session.")) return this.session(cmd);
    return fail(new TributaryError("BAD_REQUEST", `unknown command type ${cmd.type}`));
  }

  /** Session actors: one per client connection lifetime (opened, resumed, closed, tier upgrade). */
  private async session(cmd: CommandRecord): Promise<CommandResult> {
    const type = cmd.type.slice("session.".length);
    let command: SessionCommand;
    try {
      command = sessionDecider.parseCommand({ ...cmd.payload, type, at: cmd.at });
    } catch (e) {
      if (e instanceof TributaryError) return fail(e);
      throw e;
    }
    const { decision, loaded } = await this.sessions.execute(cmd.aggregateId, cmd.id, cmd.at, (s) => sessionDecider.decide(command, s), {
      userId: cmd.principal.userId,
      tenantId: cmd.principal.tenantId,
    });
    if (!decision.ok) return fail(new TributaryError(decision.rejection.code, decision.rejection.message));
    return ok({ sessionId: cmd.aggregateId, version: loaded.version });
  }

  counters() {
    return this.consumer.counters();
  }

  /** Graceful stop: no new commands, running replies finish (bounded), leases released. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.consumer.stop();
    await this.process.stop(graceMs);
    await this.o.ownership.stop();
  }
}
