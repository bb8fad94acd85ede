import { randomUUID } from "node:crypto";
import { TributaryError, isTributaryError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { HttpRequest, HttpResponse } from "../uws.js";
import { statusLine } from "./status.js";

/**
 * One HTTP exchange. uWS's HttpRequest lives only during the synchronous part of the handler, so
 * everything a route needs from it (method, url, query, headers, parameters) is copied here at
 * once. The response may be used until it is answered or aborted; `aborted` guards every write, and
 * every write after an `await` is corked (one syscall, and uWS requires it outside the handler).
 */
export interface ResponseOptions {
  headers?: Record<string, string> | undefined;
  /** Close the connection after answering (a request body we refused to read is still in flight). */
  close?: boolean | undefined;
}

const NO_HEADERS: ReadonlyMap<string, string> = new Map();

/** A client-supplied request id is reused only if it is short and harmless in logs. */
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export class HttpContext {
  readonly res: HttpResponse;
  readonly method: string;
  // Not readonly: shed() drops them once a long-lived response (an event stream) no longer needs them.
  url: string;
  query: string;
  headers: ReadonlyMap<string, string>;
  params: readonly string[];
  readonly requestId: string;
  /** Route pattern for metrics and logs (never the raw URL: ids would explode label cardinality). */
  readonly route: string;
  readonly startedAt: number;
  aborted = false;
  responded = false;
  status = 0;
  private readonly abortHandlers: Array<() => void> = [];
  private searchParamsCache: URLSearchParams | undefined;

  constructor(res: HttpResponse, req: HttpRequest, route: string, paramCount: number) {
    this.res = res;
    this.route = route;
    this.startedAt = performance.now();
    this.method = req.getMethod().toUpperCase();
    this.url = req.getUrl();
    this.query = req.getQuery() ?? "";
    const headers = new Map<string, string>();
    req.forEach((k, v) => {
      // Repeated headers are joined as HTTP allows (cookie uses "; ").
      const prev = headers.get(k);
      headers.set(k, prev === undefined ? v : `${prev}${k === "cookie" ? "; " : ", "}${v}`);
    });
    this.headers = headers;
    const params: string[] = [];
    for (let i = 0; i < paramCount; i++) params.push(safeDecode(req.getParameter(i) ?? ""));
    this.params = params;
    const given = headers.get("x-request-id");
    this.requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    // Must be attached before the handler returns, or uWS terminates the process on abort.
    res.onAborted(() => {
      this.aborted = true;
      for (const fn of this.abortHandlers.splice(0)) fn();
    });
  }

  /**
   * The response outlives the request (an event stream): drop what was copied from the request —
   * headers, query (which may carry a token), parameters — so an idle stream does not keep them for
   * its whole life. Call once the handler has read everything it needs; request id and route stay.
   */
  shed(): void {
    this.url = "";
    this.query = "";
    this.headers = NO_HEADERS;
    this.params = [];
    this.searchParamsCache = undefined;
  }

  header(name: string): string | undefined {
    return this.headers.get(name);
  }

  param(i: number): string {
    return this.params[i] ?? "";
  }

  get searchParams(): URLSearchParams {
    this.searchParamsCache ??= new URLSearchParams(this.query);
    return this.searchParamsCache;
  }

  onAbort(fn: () => void): void {
    if (this.aborted) fn();
    else this.abortHandlers.push(fn);
  }

  /** Whether the response can still be written. */
  get open(): boolean {
    return !this.aborted && !this.responded;
  }

  /** Answer with a body (already serialised) once; later calls and calls after an abort do nothing. */
  sendRaw(status: number, body: string | Uint8Array, contentType: string, opts: ResponseOptions = {}): void {
    if (!this.open) return;
    this.responded = true;
    this.status = status;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      this.res.writeHeader("content-type", contentType);
      this.res.writeHeader("x-request-id", this.requestId);
      this.res.writeHeader("cache-control", "no-store");
      for (const [k, v] of Object.entries(opts.headers ?? {})) this.res.writeHeader(k, v);
      this.res.end(body, opts.close ?? false);
    });
  }

  json(status: number, body: unknown, opts: ResponseOptions = {}): void {
    this.sendRaw(status, JSON.stringify(body), "application/json; charset=utf-8", opts);
  }

  /** The contract's error body (CONTRACT §3) with the request id and, where it applies, Retry-After. */
  error(e: unknown, log?: Logger, opts: ResponseOptions = {}): void {
    const err = toTributaryError(e);
    if (err.code === "INTERNAL") log?.error({ err: e, requestId: this.requestId, route: this.route }, "request failed");
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (err.retryAfter !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(err.retryAfter)));
    this.json(err.status, err.toBody(this.requestId), { ...opts, headers });
  }
}

/** Network-level failures of Redis or Postgres (before the breaker has noticed the outage). */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "57P01", "57P02", "57P03"]);
const CONNECTION_MESSAGE = /Connection is closed|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|the database system is (shutting down|starting up)|terminating connection|MaxRetriesPerRequest|All nodes failed|Cluster is not ready/i;

export function isConnectionFailure(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; cause?: unknown } | null;
  if (!err || typeof err !== "object") return false;
  if (typeof err.code === "string" && (CONNECTION_CODES.has(err.code) || err.code.startsWith("08"))) return true;
  if (typeof err.message === "string" && CONNECTION_MESSAGE.test(err.message)) return true;
  return err.cause !== undefined && err.cause !== e && isConnectionFailure(err.cause);
}

/**
 * Anything thrown → a contract error. A dependency that dropped the connection is 503 UNAVAILABLE
 * (the client should retry), whatever layer noticed it first; other unknown failures become
 * 500 INTERNAL without leaking internals.
 */
export function toTributaryError(e: unknown): TributaryError {
  if (isTributaryError(e)) return e;
  if (isConnectionFailure(e)) return new TributaryError("UNAVAILABLE", "a dependency is unavailable", { cause: e, retryAfter: 1 });
  return new TributaryError("INTERNAL", "internal error", { cause: e });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

