import { TributaryError, isTributaryError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { Authenticator } from "../auth/verifier.js";
import type { Principal } from "../auth/principal.js";
import { findToken } from "../auth/sources.js";
import { failedDependency, type Breaker } from "../gateway/breaker.js";
import type { EdgeMetrics } from "../metrics.js";
import type { TemplatedApp } from "../uws.js";
import { startBody, type BodyOptions } from "./body.js";
import { HttpContext } from "./context.js";

/**
 * Mounting a route: the one place where a uWS handler becomes an async function of a context.
 * It attaches onAborted (inside HttpContext) and, for routes with a body, onData before the first
 * await; turns anything thrown into the contract's error body; answers 500 for a handler that
 * returned without answering; and counts the request by route pattern and status.
 */
export type Method = "get" | "post" | "put" | "del" | "any";

export interface RouteEnv {
  log: Logger;
  metrics: EdgeMetrics;
  /** When given, a request that finds a dependency dead opens its breaker and answers 503. */
  gateway?: { breaker: Breaker } | undefined;
}

export interface RouteSpec {
  method: Method;
  /** uWS pattern, e.g. "/v1/conversations/:id/messages". */
  pattern: string;
  /** Read a JSON body under these limits (started synchronously, awaited through `body`). */
  body?: BodyOptions | undefined;
  handler: (ctx: HttpContext, body: Promise<unknown>) => Promise<void> | void;
}

const NO_BODY: Promise<unknown> = Promise.resolve(undefined);
/** Refusals counted as gateway rejections (the system protecting itself, not a client mistake). */
const GATEWAY_CODES = new Set(["RATE_LIMITED", "OVERLOADED", "UNAVAILABLE"]);

export function paramCount(pattern: string): number {
  return pattern.split("/").filter((s) => s.startsWith(":")).length;
}

export function mount(app: TemplatedApp, env: RouteEnv, spec: RouteSpec): void {
  const params = paramCount(spec.pattern);
  app[spec.method](spec.pattern, (res, req) => {
    const ctx = new HttpContext(res, req, spec.pattern, params);
    const body = spec.body ? startBody(ctx, spec.body) : NO_BODY;
    void run(ctx, env, spec, body);
  });
}

async function run(ctx: HttpContext, env: RouteEnv, spec: RouteSpec, body: Promise<unknown>): Promise<void> {
  try {
    await spec.handler(ctx, body);
    if (ctx.open) ctx.error(new Error(`route ${spec.pattern} returned without answering`), env.log);
  } catch (caught) {
    let e = caught;
    const dep = isTributaryError(e) ? undefined : failedDependency(e);
    if (dep) {
      env.log.warn({ requestId: ctx.requestId, route: spec.pattern, dependency: dep, err: e }, "dependency failed during a request");
      env.gateway?.breaker.trip(dep, e);
      e = new TributaryError("UNAVAILABLE", `${dep} is unavailable`, { retryAfter: 1, details: { dependency: dep }, cause: e });
    }
    if (isTributaryError(e) && GATEWAY_CODES.has(e.code)) env.metrics.gatewayRejections.inc({ reason: e.code });
    ctx.error(e, env.log);
  } finally {
    const status = ctx.aborted && !ctx.responded ? "aborted" : String(ctx.status);
    env.metrics.httpRequests.inc({ route: spec.pattern, method: ctx.method, status });
    // An access log at debug: off in production by default, one line per request when diagnosing.
    if (env.log.isLevelEnabled("debug")) {
      env.log.debug({ requestId: ctx.requestId, method: ctx.method, route: spec.pattern, status, ms: Math.round(performance.now() - ctx.startedAt) }, "http");
    }
  }
}

/** The caller's principal from header or cookie (or `access_token` query when `allowQuery`); 401 otherwise. */
export function authenticate(ctx: HttpContext, auth: Authenticator, opts: { allowQuery?: boolean } = {}): Promise<Principal> {
  const token = findToken({ authorization: ctx.header("authorization"), cookie: ctx.header("cookie"), query: ctx.query }, opts);
  return auth.verify(token);
}
