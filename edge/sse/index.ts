/**
 * Server-Sent Events (CONTRACT §5, issue 5 item 3).
 *
 *   const sse = attachSse(app, { log, metrics }, { fanout, authenticator, access, eventsJson });
 *   …on shutdown: sse.close();
 *
 * The route answers 401 / 404 (contract error body) before the stream starts, then streams
 * `id:/event:/data:` frames from the fan-out, starting after Last-Event-ID, else ?from=, else live.
 */
export { attachSse, SSE_PATTERN, type SseDeps, type SseServer } from "./route.js";
export { SseStream, type SseStreamOptions } from "./stream.js";
export { sseFrame, SSE_ENCODER, PING_FRAME } from "./frame.js";
