import { z } from "zod";

/**
 * What the orchestrator and its client worker processes say to each other over the fork IPC
 * channel. Validated on the worker side: a worker is a separate program with its own boundary.
 */
export const CLIENT_KINDS = ["sse", "sio", "sio-ws", "ws"] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

export const WorkerSpecSchema = z.object({
  /**
   * sse: HTTP Server-Sent Events · sio: the stock socket.io-client (polling, then upgrade) ·
   * sio-ws: a lightweight Socket.IO v5 client speaking the frames over raw `ws` (WebSocket only) ·
   * ws: plain WebSocket, one envelope per frame (the bare uWS ceiling server).
   */
  kind: z.enum(CLIENT_KINDS),
  baseUrl: z.string().url(),
  /** Path for sse / ws; `{id}` and `{token}` are replaced. */
  pathTemplate: z.string().default("/v1/conversations/{id}/events?access_token={token}"),
  clients: z.array(z.object({ conversationId: z.string(), token: z.string(), sender: z.boolean() })).max(20_000),
  /** Connection attempts in flight at once, so a ramp does not look like a SYN flood. */
  connectConcurrency: z.number().int().min(1).max(1000).default(64),
  /** Chat mode: each sender sends one message every intervalMs (skipping while its reply runs). */
  chat: z.object({ intervalMs: z.number().positive(), maxTokens: z.number().int().positive().optional() }).optional(),
});
export type WorkerSpec = z.input<typeof WorkerSpecSchema>;

export type ToWorker = { t: "start"; spec: WorkerSpec } | { t: "reset" } | { t: "chat"; on: boolean } | { t: "stop" };

export type FromWorker =
  | { t: "ready"; connected: number; failed: number; error?: string }
  | {
      t: "tick";
      received: number;
      lat: Array<[number, number]>;
      first: Array<[number, number]>;
      connected: number;
      errors: Record<string, number>;
    };
