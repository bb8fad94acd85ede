import type { Envelope } from "../../core/envelope.js";
import type { Logger } from "../../core/logger.js";
import type { RedisClient } from "../../core/redis/connection.js";

/**
 * The fan-out's public shapes. Transports (SSE, Socket.IO) code against these only.
 *
 * Vocabulary:
 * - an *encoder* turns one envelope into the exact bytes one transport puts on the wire. Each live
 *   event is encoded ONCE per encoder in use, whatever the number of clients (DESIGN §Edge);
 * - a *topic* is the uWS pub/sub topic of (conversation, encoder): WebSocket clients join it with
 *   `ws.subscribe(topic)` and receive frames from `app.publish` in native code;
 * - a *listener* is a client without a uWS topic (SSE response, Socket.IO long-polling): it gets
 *   each encoded frame through `deliver`, which must never block and reports when its bounded
 *   buffer is full (I7).
 */

/**
 * `seq` is the fan-out's per-process publish sequence (see Fanout.seq). For a live event it is the
 * event's own sequence number; for a catch-up frame it is the sequence of the last event published
 * before the frame was handed over. Either way: a client that has received a frame stamped `s` has
 * also been handed every live frame with sequence ≤ s of the topics/listeners it had joined at that
 * moment (frames reach one connection in call order). Socket.IO connection-state recovery can build
 * its per-session positions on that; SSE ignores it.
 */
export type Encoder = (env: Envelope, seq: number) => string;

/** Reads events that are no longer in Redis (the archive), in offset order, each with offset > `from`. */
export type OlderEventsReader = (conversationId: string, from: string) => AsyncIterable<Envelope>;

export interface FanoutOptions {
  /** Shared command connection (XRANGE, XREVRANGE, wake-ups). Blocking reads get their own duplicates. */
  redis: RedisClient;
  partitions: number;
  /** `app.publish` of the uWS app, for topic-joined (WebSocket) clients. Omit when no client joins topics. */
  publish?: (topic: string, frame: string) => void;
  log?: Logger;
  /**
   * Optional archive seam (I6: "however old the offset"). Called only when `from` is older than the
   * first event still in Redis; the fan-out reads it until it reaches events Redis still holds and
   * checks version continuity at the hand-over, re-reading the archive if the archiver trimmed in
   * between. Without it, a resume from before the Redis window starts at the oldest event in Redis.
   */
  olderEvents?: OlderEventsReader;
  /** Upper bound of one blocking XREAD, ms. Followed-set changes wake the read at once, so this only
   *  bounds how long a lost wake-up could delay a newly followed conversation. Default 5000. */
  blockMs?: number;
  /** XRANGE page size during catch-up and max entries per stream per XREAD. Default 256. */
  pageSize?: number;
  /** Identifies this edge node in its wake-up keys. Default: random. */
  nodeId?: string;
  /**
   * Single Redis only: how many blocking XREAD loops (each its own connection) share the followed
   * streams, split by partition. Default 1: one command per round for the whole node, as cheap as a
   * bare XREAD loop; more loops spread Redis's work per round when a node follows very many streams.
   * Redis Cluster always reads one partition per loop (an XREAD cannot span slots).
   */
  readLoops?: number;
  /**
   * Send each blocking read's successor before publishing its reply, so Redis serves it meanwhile
   * (docs/fanout.md, "Pipelined rounds"). Default false (one round trip after the other, as the
   * bare ceiling loop does): the A/B did not show it paying for its smaller rounds.
   */
  pipelineReads?: boolean;
}

/** A client as the fan-out sees it. Every callback is synchronous and must never throw or block. */
export interface FanoutSink {
  /** Name of a registered encoder. */
  encoder: string;
  /**
   * Hand one encoded frame to the client (catch-up frames always, live frames for listeners).
   * Return false when the client's bounded buffer is over its limit: the fan-out then detaches the
   * sink and calls `onDrop`; the client reconnects and resumes by offset (I7).
   */
  deliver(frame: string, env: Envelope): boolean;
  /**
   * Present for WebSocket clients: once caught up, the fan-out calls `join(topic)` exactly once
   * (typically `ws.subscribe(topic)`) instead of delivering live frames one by one. The caller
   * unsubscribes itself when it detaches; uWS enforces the bound (maxBackpressure +
   * closeOnBackpressureLimit).
   */
  join?(topic: string): void;
  /**
   * Catch-up flow control (optional). Catch-up asks after each frame it delivered: undefined = go
   * on at once; a promise = wait for it before the next frame, then go on if it resolves true or drop
   * the sink if false (the client stalled). This lets a long replay run at the client's pace instead
   * of overflowing its bound; live frames never wait (I7) — they only count against the bound.
   */
  whenWritable?(): Promise<boolean> | undefined;
  /** Called once when the fan-out dropped the sink (deliver returned false). Close the connection here. */
  onDrop?(): void;
}

export interface Attachment {
  /** The conversation's latest offset when attached ("0" if empty): CONTRACT §6 `subscribe` ack. */
  offset: string;
  /**
   * Settles (never rejects) once catch-up is over: "live" = joined the live tail; "dropped" = over
   * its bound (onDrop was called); "detached" = detach() came first; "failed" = reading Redis or the
   * archive failed, the sink was detached and `onDrop` called so the client resumes by offset.
   */
  live: Promise<LiveResult>;
  /** Stop following for this sink. Idempotent. Does not call `onDrop`. */
  detach(): void;
}

export interface FanoutStats {
  conversations: number;
  /** Partitions with at least one followed conversation. */
  partitions: number;
  /** Blocking XREAD loops running (one connection each). */
  readLoops: number;
  listeners: number;
  topicSinks: number;
  published: number;
  dropped: number;
}

export type LiveResult = "live" | "dropped" | "detached" | "failed";

export type PublishObserver = (env: Envelope, seq: number) => void;

export type { Envelope, RedisClient, Logger };
