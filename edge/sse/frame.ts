import type { Envelope } from "../../core/envelope.js";

/**
 * CONTRACT §5 wire format. The envelope JSON has no raw newlines (JSON.stringify escapes them), so
 * one `data:` line always carries the whole envelope; the offset and type are plain tokens.
 */
export const SSE_ENCODER = "sse";

export function sseFrame(env: Envelope): string {
  return `id: ${env.offset}\nevent: ${env.type}\ndata: ${JSON.stringify(env)}\n\n`;
}

/** Heartbeat comment (CONTRACT §5): keeps proxies from timing the stream out; clients ignore it. */
export const PING_FRAME = ": ping\n\n";

/** First bytes of every stream, so the status line and headers leave at once. */
export const OPEN_FRAME = ": connected\n\n";

/**
 * A one-line comment written only to make uWS drain its own buffer from `onWritable` (uWS does not
 * drain by itself once an onWritable handler is set). A comment line dispatches nothing.
 */
export const DRAIN_PROBE = ":\n";
