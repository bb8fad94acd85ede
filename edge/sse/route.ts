import { z } from "zod";
import { isOffset } from "../../core/envelope.js";
import { TributaryError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { Principal } from "../auth/principal.js";
import { findToken } from "../auth/sources.js";
import type { Attachment, Fanout, FanoutSink } from "../fanout/index.js";
import { mount, type HttpContext, type RouteEnv } from "../http/index.js";
import { perTurnCounter, type EdgeMetrics } from "../metrics.js";
import type { TemplatedApp } from "../uws.js";
import { SSE_ENCODER, sseFrame } from "./frame.js";
import { SseStream } from "./stream.js";

/**
 * `GET /v1/conversations/:id/events` (CONTRACT §5). Authentication and the tenant/owner check
 * answer 401 / 404 with the contract's JSON error body before the stream starts; after that the
 * response is an event stream fed by the fan-out (exact resume, I6; bounded buffer, I7).
 *
 * `?format=json` is the paged JSON reader of CONTRACT §3, served by the HTTP routes: this route
 * hands such requests to `deps.eventsJson` unchanged.
 */
export interface SseDeps {
  fanout: Fanout;
  /** The principal of a valid token; throws TributaryError UNAUTHENTICATED otherwise. */
  authenticator: { verify(token: string | undefined): Promise<Principal> };
  /** Resolves when `principal` may read the conversation; throws TributaryError NOT_FOUND otherwise. */
  access: { check(conversationId: string, principal: Principal): Promise<unknown> };
  /** Serves `?format=json` (CONTRACT §3). Without it such requests answer 400. */
  eventsJson?: ((ctx: HttpContext) => Promise<void> | void) | undefined;
  metrics?: Pick<EdgeMetrics, "connections" | "deliveries" | "drops"> | undefined;
  /** The gateway's breaker: while Redis is known down, answer 503 UNAVAILABLE at once instead of waiting on it. */
  breaker?: { assertUp(...deps: string[]): void; trip(dep: string, error: unknown): void } | undefined;
  log?: Logger | undefined;
  /** Heartbeat period [15000 ms]. */
  pingIntervalMs?: number | undefined;
  /** Per-response send buffer bound [1 MiB]; a client beyond it is disconnected and resumes. */
  maxBufferedBytes?: number | undefined;
  /** Optional `retry:` (client reconnection delay, ms) sent at the start of each stream. */
  retryMs?: number | undefined;
}

export const SSE_PATTERN = "/v1/conversations/:id/events";

const offset = z.string().refine(isOffset, "expected a stream offset like 1732212345678-0, or 0");
/** Where the stream starts: Last-Event-ID, else ?from=, else live (null). */
const StartSchema = z.object({ lastEventId: offset.optional(), from: offset.optional() });

/** Owns the heartbeat timer shared by every open stream; `close()` ends all of them. */
export interface SseServer {
  /** Open event streams. */
  readonly size: number;
  /** Close every open stream (shutdown) and stop the heartbeat. */
  close(): void;
}

export function attachSse(app: TemplatedApp, env: RouteEnv, deps: SseDeps): SseServer {
  if (!deps.fanout.hasEncoder(SSE_ENCODER)) deps.fanout.registerEncoder(SSE_ENCODER, sseFrame);
  /** Open streams → when their token expires (ms since the epoch). */
  const streams = new Map<SseStream, number>();
  const maxBufferedBytes = deps.maxBufferedBytes ?? 1024 * 1024;
  const log = deps.log ?? env.log;
  // The per-frame path must not hash label sets (see perTurnCounter).
  const hub: SseHub = { streams, metrics: deps.metrics, delivered: deps.metrics ? perTurnCounter(deps.metrics.deliveries, SSE_LABELS) : undefined, log };
  // One timer for all streams: thousands of idle connections must not mean thousands of timers.
  // It also ends streams whose token expired (within one period): a stream outliving its token
  // would keep serving a principal that may no longer exist.
  const ping = setInterval(() => {
    const now = Date.now();
    for (const [s, expiresAt] of streams) {
      if (now >= expiresAt) s.close();
      else s.ping();
    }
  }, deps.pingIntervalMs ?? 15_000);
  ping.unref();

  mount(app, env, {
    method: "get",
    pattern: SSE_PATTERN,
    handler: async (ctx) => {
      if (ctx.searchParams.get("format") === "json") {
        if (!deps.eventsJson) throw new TributaryError("BAD_REQUEST", "format=json is not served on this node");
        await deps.eventsJson(ctx);
        return;
      }
      const conversationId = ctx.param(0);
      const token = findToken({ authorization: ctx.header("authorization"), cookie: ctx.header("cookie"), query: ctx.query }, { allowQuery: true });
      const principal = await deps.authenticator.verify(token);
      deps.breaker?.assertUp("redis");
      await deps.access.check(conversationId, principal);
      const start = StartSchema.safeParse({
        lastEventId: nonEmpty(ctx.header("last-event-id")),
        from: nonEmpty(ctx.searchParams.get("from") ?? undefined),
      });
      if (!start.success) throw new TributaryError("VALIDATION_FAILED", "invalid resume offset", { details: start.error.issues });
      const from = start.data.lastEventId ?? start.data.from ?? null;
      if (!ctx.open) return;

      const stream = new SseStream(ctx.res, { maxBufferedBytes, headers: { "x-request-id": ctx.requestId }, retryMs: deps.retryMs });
      const client = new SseClient(hub, stream, conversationId, ctx.requestId);
      ctx.onAbort(abortHandler(client));
      streams.set(stream, principal.exp * 1000);
      deps.metrics?.connections.inc(SSE_LABELS);

      let attachment: Attachment;
      try {
        attachment = await deps.fanout.attach(conversationId, from, client);
      } catch (e) {
        client.cleanup();
        deps.breaker?.trip("redis", e);
        throw new TributaryError("UNAVAILABLE", "event stream unavailable", { cause: e });
      }
      client.attachment = attachment;
      if (!ctx.open) {
        // The client left while we attached.
        attachment.detach();
        return;
      }
      // From here the response belongs to the stream (mount must not answer it).
      ctx.responded = true;
      ctx.status = 200;
      // The stream may live for hours: keep nothing of the request it no longer needs.
      ctx.shed();
      stream.open();
    },
  });

  return {
    get size() {
      return streams.size;
    },
    close() {
      clearInterval(ping);
      for (const s of [...streams.keys()]) s.close();
    },
  };
}

const SSE_LABELS = { transport: "sse" } as const;

/** What every SSE client of one route shares. */
interface SseHub {
  /** Open streams → when their token expires (ms since the epoch). */
  streams: Map<SseStream, number>;
  metrics: SseDeps["metrics"];
  delivered: { inc(): void } | undefined;
  log: Logger;
}

/**
 * One SSE client as the fan-out sees it (FanoutSink). A class with its callbacks on the prototype,
 * holding only what it needs — not closures over the request handler, which would keep the whole
 * request (headers, token, parsed query) alive for the stream's life.
 */
class SseClient implements FanoutSink {
  readonly encoder = SSE_ENCODER;
  attachment: Attachment | undefined;

  constructor(
    private readonly hub: SseHub,
    private readonly stream: SseStream,
    private readonly conversationId: string,
    private readonly requestId: string,
  ) {}

  deliver(frame: string): boolean {
    this.hub.delivered?.inc();
    return this.stream.send(frame);
  }

  whenWritable(): Promise<boolean> | undefined {
    return this.stream.whenWritable();
  }

  onDrop(): void {
    this.hub.metrics?.drops.inc({ transport: "sse", reason: "slow-client" });
    this.hub.log.info({ conversationId: this.conversationId, requestId: this.requestId }, "SSE client over its buffer bound; disconnected");
    this.stream.close();
  }

  aborted(): void {
    this.stream.markAborted();
    this.cleanup();
  }

  /** Once per stream: forget it, stop following, count it gone. */
  cleanup(): void {
    if (!this.hub.streams.delete(this.stream)) return;
    this.attachment?.detach();
    this.hub.metrics?.connections.dec(SSE_LABELS);
  }
}

/** Outside the handler, so the closure uWS keeps until the response ends holds the client only. */
function abortHandler(client: SseClient): () => void {
  return () => client.aborted();
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
