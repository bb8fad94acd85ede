import type { Envelope } from "../../core/envelope.js";

/**
 * Socket.IO v5 packets for namespace "/", already wrapped in an Engine.IO v4 message ("4" prefix),
 * so each is one WebSocket message or one record of a polling payload. Written by hand rather than
 * through socket.io-parser's Encoder because the chat_event frame is built once per event for every
 * client (DESIGN §Edge) and these shapes are fixed; incoming packets do go through the parser.
 */

/** `chat_event(envelope, offset)`: the offset LAST, which is what the stock client records for recovery. */
export function chatEventFrame(env: Envelope): string {
  // An offset is digits and one "-" (a stream id): a JSON string as it is, no escaping to do.
  return `42["chat_event",${JSON.stringify(env)},"${env.offset}"]`;
}

export function ackFrame(id: number, payload: unknown): string {
  return `43${id}${JSON.stringify([payload])}`;
}

export function connectFrame(sid: string, pid: string): string {
  return `40${JSON.stringify({ sid, pid })}`;
}

/** CONNECT_ERROR: the stock client raises `connect_error` with `err.message` = message, `err.data` = data. */
export function connectErrorFrame(message: string, data?: unknown): string {
  return `44${JSON.stringify(data === undefined ? { message } : { message, data })}`;
}

export function disconnectFrame(): string {
  return "41";
}
