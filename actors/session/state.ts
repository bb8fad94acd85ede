import { z } from "zod";
import { tier } from "../../core/events/session.js";

/** JSON-safe session context; the schema validates snapshots on the way back in. */
const count = z.number().int().nonnegative();

export const SessionContext = z.object({
  version: count,
  sessionId: z.string(),
  userId: z.string(),
  tenantId: z.string(),
  tier,
  transport: z.string(),
  resumes: count,
  closeReason: z.string().nullable(),
});
export type SessionContext = z.infer<typeof SessionContext>;

export const SESSION_STATES = ["new", "open", "closed"] as const;
export type SessionStatus = (typeof SESSION_STATES)[number];

export function initialSessionContext(): SessionContext {
  return { version: 0, sessionId: "", userId: "", tenantId: "", tier: "anonymous", transport: "", resumes: 0, closeReason: null };
}
