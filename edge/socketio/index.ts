import { errorMessage } from "../../core/errors.js";
import { EngineServer } from "../engineio/server.js";
import { perTurnCounter } from "../metrics.js";
import type { TemplatedApp } from "../uws.js";
import { Connection, ENCODER, type ConnectionHost } from "./connection.js";
import { SOCKETIO_DEFAULTS, type SocketIoDeps, type SocketIoOptions, type SocketIoSessionHooks } from "./deps.js";
import { chatEventFrame } from "./frames.js";
import { buildJournal, PublishRing, SessionRecordSchema, topicFrames, type DirectEntry, type LiveSub, type SessionRecord } from "./journal.js";

/**
 * The Socket.IO v5 server of CONTRACT §6 on our Engine.IO v4 server on uWS.
 *
 *   const sio = attachSocketIo(app, { fanout, auth, access, commands, redis, log, metrics });
 *   …on shutdown: sio.close();
 *
 * The fan-out must be built with `publish: (t, f) => app.publish(t, f)` so WebSocket clients get
 * live frames in native code; this registers its "sio" encoder (one frame per event) and a publish
 * observer feeding the per-conversation publish log used by recovery.
 */
export interface SocketIoServer {
  engine: EngineServer;
  /** Open Socket.IO connections on this node. */
  connections(): number;
  /** Close every connection (their sessions stay recoverable) and stop observing the fan-out. */
  close(): void;
  /** Resolves once every session record written so far reached Redis (await it before quitting Redis). */
  flush(): Promise<void>;
}

export type { SocketIoDeps, SocketIoOptions, SocketIoSessionHooks };
export { SOCKETIO_DEFAULTS };

export function attachSocketIo(app: TemplatedApp, deps: SocketIoDeps, options: Partial<SocketIoOptions> = {}): SocketIoServer {
  const opts: SocketIoOptions = { ...SOCKETIO_DEFAULTS, ...options };
  const ring = new PublishRing(opts.ringCapacity);
  deps.fanout.registerEncoder(ENCODER, (env) => chatEventFrame(env));
  // Topic-joined connections by conversation: the publish log keeps a conversation's events while
  // any of them follows it. One array push per live event, nothing per client.
  const joined = new Map<string, Set<Connection>>();
  const stopObserving = deps.fanout.onPublish((env, seq) => ring.push(seq, env.conversationId, env.offset));

  // Per-frame counting without hashing label sets (see perTurnCounter).
  const wsDelivered = deps.metrics ? perTurnCounter(deps.metrics.deliveries, { transport: "websocket" }) : undefined;
  const pollingDelivered = deps.metrics ? perTurnCounter(deps.metrics.deliveries, { transport: "polling" }) : undefined;
  const live = new Map<string, Connection>();
  // Records of sessions this node closed, kept in memory for a fast same-node recovery; Redis holds
  // the same record for any other node. Both expire after the recovery TTL.
  const kept = new Map<string, { rec: SessionRecord; timer: NodeJS.Timeout }>();
  const open = new Set<Connection>();
  const key = (pid: string) => `${opts.keyPrefix}${pid}`;
  const pendingWrites = new Set<Promise<unknown>>();

  const host: ConnectionHost = {
    deps,
    opts,
    saveSession(rec) {
      const prev = kept.get(rec.pid);
      if (prev) clearTimeout(prev.timer);
      const timer = setTimeout(() => kept.delete(rec.pid), opts.recoveryTtlMs);
      timer.unref();
      kept.set(rec.pid, { rec, timer });
      const write = deps.redis
        .set(key(rec.pid), JSON.stringify(rec), "PX", opts.recoveryTtlMs)
        .catch((e: unknown) => {
          deps.log.warn({ sessionId: rec.pid, err: errorMessage(e) }, "socket.io session record not saved; only this node can recover it");
        })
        .finally(() => pendingWrites.delete(write));
      pendingWrites.add(write);
    },
    async takeSession(pid, principal) {
      // Only the same tenant and user may take a session: someone else holding the pid must not
      // get its subscriptions (I9), nor spoil the owner's recovery by consuming the record.
      const owns = (rec: SessionRecord) => rec.tenantId === principal.tenantId && rec.userId === principal.userId;
      const local = kept.get(pid);
      if (local) {
        if (!owns(local.rec)) return undefined;
        clearTimeout(local.timer);
        kept.delete(pid);
        // Single use everywhere: another node must not recover the same session too.
        await deps.redis.del(key(pid));
        return local.rec;
      }
      const read = async (): Promise<SessionRecord | undefined | null> => {
        const raw = await deps.redis.get(key(pid));
        if (raw === null) return null;
        try {
          const parsed = SessionRecordSchema.safeParse(JSON.parse(raw));
          return parsed.success ? parsed.data : undefined;
        } catch {
          return undefined;
        }
      };
      let rec = await read();
      const until = Date.now() + opts.recoveryWaitMs;
      while (rec === null && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        rec = await read();
      }
      if (!rec || !owns(rec)) return undefined;
      // DEL answers 1 to exactly one of two racing recoveries of the same session.
      return (await deps.redis.del(key(pid))) === 1 ? rec : undefined;
    },
    livePid: (pid) => live.get(pid),
    registerPid(pid, c) {
      if (c) live.set(pid, c);
      else live.delete(pid);
    },
    journalOf(subs: LiveSub[], direct: DirectEntry[], marker, confirmed, trimmed) {
      return buildJournal(subs, direct, ring, opts.journalMax, marker, confirmed, trimmed);
    },
    topicFramesOf: (sub) => topicFrames(ring, sub),
    closed(c) {
      open.delete(c);
    },
    countDelivery(transport) {
      (transport === "websocket" ? wsDelivered : pollingDelivered)?.inc();
    },
    topicJoined(conversationId, c, on) {
      let set = joined.get(conversationId);
      if (on) {
        if (!set) {
          joined.set(conversationId, (set = new Set()));
          ring.track(conversationId);
        }
        set.add(c);
      } else if (set) {
        set.delete(c);
        if (set.size === 0) {
          joined.delete(conversationId);
          ring.untrack(conversationId);
        }
      }
    },
  };

  const engine = new EngineServer(app, {
    path: opts.path,
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    maxPayload: opts.maxPayload,
    maxPollingBufferBytes: opts.maxPollingBufferBytes,
    maxWsBackpressure: opts.maxWsBackpressure,
    onConnection(session) {
      open.add(new Connection(session, host));
    },
  });

  return {
    engine,
    connections: () => open.size,
    close() {
      stopObserving();
      engine.closeAll();
      for (const k of kept.values()) clearTimeout(k.timer);
      kept.clear();
    },
    async flush() {
      await Promise.all([...pendingWrites]);
    },
  };
}
