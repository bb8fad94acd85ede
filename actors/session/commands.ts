import { z } from "zod";
import { tier } from "../../core/events/session.js";

/** Session commands; `at` and ids come from the sender (the edge), never from the decider. */
const at = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(200);
const transport = z.string().min(1).max(64);

export const OpenSession = z
  .object({ type: z.literal("open"), at, sessionId: id, userId: id, tenantId: id, tier, transport })
  .strict();
export const ResumeSession = z.object({ type: z.literal("resume"), at, transport }).strict();
export const CloseSession = z.object({ type: z.literal("close"), at, reason: z.string().min(1).max(64) }).strict();
export const UpgradeTier = z.object({ type: z.literal("upgradeTier"), at, tier }).strict();

export const SessionCommand = z.discriminatedUnion("type", [OpenSession, ResumeSession, CloseSession, UpgradeTier]);

export type OpenSession = z.infer<typeof OpenSession>;
export type ResumeSession = z.infer<typeof ResumeSession>;
export type CloseSession = z.infer<typeof CloseSession>;
export type UpgradeTier = z.infer<typeof UpgradeTier>;
export type SessionCommand = z.infer<typeof SessionCommand>;
