import { z } from "zod";
import { isOffset } from "../../core/envelope.js";
import { TributaryError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { Principal } from "../auth/principal.js";
import { findToken } from "../auth/sources.js";
import type { Attachment, Fanout } from "../fanout/index.js";
import { mount, type HttpContext, type RouteEnv } from "../http/index.js";
import type { EdgeMetrics } from "../metrics.js";
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
      const transport = { transport: "sse" } as const;
      // Bound children: the per-frame path must not hash label sets.
      const delivered = deps.metrics?.deliveries.labels(transport);
      let detach: (() => void) | undefined;
      const cleanup = () => {
        if (!streams.delete(stream)) return;
        detach?.();
        deps.metrics?.connections.dec(transport);
      };
      ctx.onAbort(() => {
        stream.markAborted();
        cleanup();
      });
      streams.set(stream, principal.exp * 1000);
      deps.metrics?.connections.inc(transport);

      let attachment: Attachment;
      try {
        attachment = await deps.fanout.attach(conversationId, from, {
          encoder: SSE_ENCODER,
          deliver: (frame) => {
            delivered?.inc();
            return stream.send(frame);
          },
          whenWritable: () => stream.whenWritable(),
          onDrop: () => {
            deps.metrics?.drops.inc({ transport: "sse", reason: "slow-client" });
            log.info({ conversationId, requestId: ctx.requestId }, "SSE client over its buffer bound; disconnected");
            stream.close();
          },
        });
      } catch (e) {
        cleanup();
        deps.breaker?.trip("redis", e);
        throw new TributaryError("UNAVAILABLE", "event stream unavailable", { cause: e });
      }
      detach = attachment.detach;
      if (!ctx.open) {
        // The client left while we attached.
        detach();
        return;
      }
      // From here the response belongs to the stream (mount must not answer it).
      ctx.responded = true;
      ctx.status = 200;
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

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
