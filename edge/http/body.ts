import type { z } from "zod";
import { TributaryError } from "../../core/errors.js";
import type { HttpContext } from "./context.js";

/**
 * Request bodies (CONTRACT §3): JSON only (415), at most `maxBytes` (413), unparseable → 400
 * BAD_REQUEST, schema violations → 400 VALIDATION_FAILED with the zod issues as details.
 *
 * The limit is enforced while the body streams in: a declared Content-Length over the limit is
 * refused before a byte is read, and a chunked body (accepted — decision recorded in
 * docs/edge-http.md) is refused the moment it crosses the limit. Either way the 413 goes out at once
 * with `Connection: close`, further chunks are dropped unread, and nothing over the limit is ever
 * held in memory.
 *
 * uWS delivers body chunks only to an `onData` attached during the synchronous part of the handler,
 * so `startBody` must be called before the first `await`; the returned promise is awaited later.
 */
export interface BodyOptions {
  maxBytes: number;
  /** An absent or empty body is allowed (resolves to undefined) instead of being a 400. */
  optional?: boolean;
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;.*)?$/i;

export function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && JSON_TYPE.test(value.trim());
}

export function payloadTooLarge(maxBytes: number): TributaryError {
  return new TributaryError("PAYLOAD_TOO_LARGE", `request body exceeds ${maxBytes} bytes`, { details: { maxBytes } });
}

/** Start reading the body; call synchronously inside the uWS handler. */
export function startBody(ctx: HttpContext, opts: BodyOptions): Promise<unknown> {
  const p = readBody(ctx, opts);
  // The route may answer (e.g. 401) without ever awaiting the body: never an unhandled rejection.
  p.catch(() => undefined);
  return p;
}

function readBody(ctx: HttpContext, opts: BodyOptions): Promise<unknown> {
  const declared = ctx.header("content-length");
  const chunked = /\bchunked\b/i.test(ctx.header("transfer-encoding") ?? "");
  const length = declared === undefined || declared === "" ? undefined : Number(declared);
  const hasBody = chunked || (length !== undefined && length > 0);
  const { res } = ctx;

  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
    return refuse(ctx, new TributaryError("BAD_REQUEST", "invalid Content-Length"));
  }
  if (!hasBody) {
    if (opts.optional) return Promise.resolve(undefined);
    if (!isJsonContentType(ctx.header("content-type"))) return refuse(ctx, unsupported());
    return Promise.reject(new TributaryError("BAD_REQUEST", "request body required"));
  }
  if (!isJsonContentType(ctx.header("content-type"))) return refuse(ctx, unsupported());
  if (length !== undefined && length > opts.maxBytes) return refuse(ctx, payloadTooLarge(opts.maxBytes));

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    ctx.onAbort(() => {
      if (done) return;
      done = true;
      reject(new TributaryError("BAD_REQUEST", "request aborted"));
    });
    res.onData((chunk, isLast) => {
      if (done) return;
      received += chunk.byteLength;
      if (received > opts.maxBytes) {
        done = true;
        chunks.length = 0;
        const err = payloadTooLarge(opts.maxBytes);
        // Answer now, mid-stream; the connection closes so the rest of the body is never read.
        ctx.error(err, undefined, { close: true });
        reject(err);
        return;
      }
      // uWS neuters the ArrayBuffer when this callback returns: copy.
      chunks.push(Buffer.from(new Uint8Array(chunk.slice(0))));
      if (!isLast) return;
      done = true;
      const text = Buffer.concat(chunks, received);
      if (text.length === 0) {
        if (opts.optional) resolve(undefined);
        else reject(new TributaryError("BAD_REQUEST", "request body required"));
        return;
      }
      try {
        resolve(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(text)) as unknown);
      } catch {
        reject(new TributaryError("BAD_REQUEST", "request body is not valid JSON"));
      }
    });
  });
}

function unsupported(): TributaryError {
  return new TributaryError("UNSUPPORTED_MEDIA_TYPE", "request body must be application/json");
}

/** Refuse before reading: answer at once and close, because the unread body is still on the wire. */
function refuse(ctx: HttpContext, err: TributaryError): Promise<never> {
  ctx.error(err, undefined, { close: true });
  return Promise.reject(err);
}

/** Validate a parsed body (or query object) against a zod schema: 400 VALIDATION_FAILED with the issues. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, what = "request body"): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new TributaryError("VALIDATION_FAILED", `${what} is invalid`, {
    // The zod issues as they are (CONTRACT §3); zod v4 leaves the offending input out of them.
    details: parsed.error.issues,
  });
}
