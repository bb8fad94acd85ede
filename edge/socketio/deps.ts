import type { Logger } from "../../core/logger.js";
import type { RedisClient } from "../../core/redis/connection.js";
import type { AccessChecker } from "../access.js";
import type { Principal } from "../auth/principal.js";
import type { Authenticator } from "../auth/verifier.js";
import type { Commands } from "../deps.js";
import type { Fanout } from "../fanout/index.js";
import type { EdgeMetrics } from "../metrics.js";

/**
 * What the Socket.IO server needs, as narrow interfaces (the lead wires the real ones; tests pass
 * real Redis and fan-out and a fake command interface).
 */
export interface SocketIoSessionHooks {
  /** A new Socket.IO session (pid) started. */
  opened(s: { sessionId: string; principal: Principal; transport: string }): Promise<void>;
  /** A dropped session was recovered (possibly on another edge node). */
  resumed(s: { sessionId: string; principal: Principal; transport: string }): Promise<void>;
  /** The transport of a session closed; `recoverable` = it may still be resumed within the TTL. */
  closed(s: { sessionId: string; principal: Principal; reason: string; recoverable: boolean }): Promise<void>;
}

export interface SocketIoDeps {
  fanout: Fanout;
  auth: Pick<Authenticator, "verify">;
  access: Pick<AccessChecker, "check">;
  commands: Pick<Commands, "postMessage" | "cancel">;
  /** Session records for recovery (any edge node can resume a session). */
  redis: RedisClient;
  log: Logger;
  metrics?: EdgeMetrics;
  sessions?: SocketIoSessionHooks;
  /**
   * The gateway's admission for chat_message (breaker, command backlog, rate limit — the same gate
   * as HTTP); throws TributaryError UNAVAILABLE, OVERLOADED or RATE_LIMITED. Preferred over `rateLimit`.
   */
  admitMessage?: (principal: Principal, conversationId: string) => Promise<void>;
  /** The per-user limiter alone, for servers without a gateway (tests); ignored when `admitMessage` is set. */
  rateLimit?: (principal: Principal, command: "chat_message") => Promise<void>;
}

export interface SocketIoOptions {
  path: string;
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
  /** Queued bytes a polling client may hold before it is cut off (I7). */
  maxPollingBufferBytes: number;
  /** Unsent bytes a WebSocket may hold before it is cut off (I7). */
  maxWsBackpressure: number;
  /** How long a dropped session can be recovered (CONTRACT §6: 2 minutes). */
  recoveryTtlMs: number;
  /**
   * How long a recovering CONNECT waits for the session record to appear in Redis: when the client
   * reconnects to another node, the old node may still be writing it (it saw the close later).
   */
  recoveryWaitMs: number;
  /** Journal entries kept per session (frames that may be in flight when a transport drops). */
  journalMax: number;
  /** Live events remembered per followed conversation for rebuilding WebSocket journals. */
  ringCapacity: number;
  /** Incoming packets: burst and sustained rate per connection. */
  floodBurst: number;
  floodPerSecond: number;
  /** Time a client has to send CONNECT after the Engine.IO handshake. */
  connectTimeoutMs: number;
  /** Redis key prefix of session records. */
  keyPrefix: string;
}

export const SOCKETIO_DEFAULTS: SocketIoOptions = {
  path: "/socket.io/",
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxPayload: 1_000_000,
  maxPollingBufferBytes: 1 << 20,
  maxWsBackpressure: 1 << 20,
  recoveryTtlMs: 120_000,
  recoveryWaitMs: 1_000,
  journalMax: 8192,
  ringCapacity: 8192,
  floodBurst: 60,
  floodPerSecond: 20,
  connectTimeoutMs: 45_000,
  keyPrefix: "sio:session:",
};
