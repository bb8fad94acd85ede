import { z } from "zod";

/**
 * Session events (one `session` aggregate per client connection lifetime, DESIGN §Actors). These are
 * not client-facing (CONTRACT §4 lists only conversation events); the sessions read model and the
 * audit trail consume them. Schemas are `.loose()` for the same reason as the conversation events: a
 * newer writer may add fields and an older reader must still accept the record.
 */
export const TIERS = ["anonymous", "registered", "privileged"] as const;
export const tier = z.enum(TIERS);
export type Tier = z.infer<typeof tier>;

/** Suggested values: "http", "sse", "socket.io-polling", "socket.io-websocket"; any short label is accepted. */
const transport = z.string().min(1).max(64);

export const SessionEvents = {
  /** A client connected and authenticated; `tier` is the token's tier at that moment. */
  "session.opened": z
    .object({ sessionId: z.string(), userId: z.string(), tenantId: z.string(), tier, transport })
    .loose(),
  /** The same session came back over a (possibly different) transport, e.g. Socket.IO recovery. */
  "session.resumed": z.object({ sessionId: z.string(), transport }).loose(),
  /** The session ended; `reason` is a short label ("client", "timeout", "kicked", "slow-consumer", …). */
  "session.closed": z.object({ sessionId: z.string(), reason: z.string() }).loose(),
  /** Only upward, only anonymous → registered (a user who signed up mid-session). */
  "session.tierUpgraded": z.object({ sessionId: z.string(), userId: z.string(), from: tier, to: tier }).loose(),
} as const;

export type SessionEventType = keyof typeof SessionEvents;
export type SessionEventData<T extends SessionEventType> = z.infer<(typeof SessionEvents)[T]>;
export type SessionEvent = { [T in SessionEventType]: { type: T; data: SessionEventData<T> } }[SessionEventType];

export function isSessionEventType(t: string): t is SessionEventType {
  return Object.hasOwn(SessionEvents, t);
}
