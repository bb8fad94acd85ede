import { z } from "zod";
import { decodeRaw, encode } from "../../core/codec.js";
import { DecodeError } from "../../core/errors.js";

/**
 * A command as it travels on `{pN}:cmd` (field `c`, msgpack). `now` and every id the decider needs
 * arrive here, chosen by the sender, so deciders stay deterministic and a redelivered command
 * decides the same way (STYLE §1).
 */
export const Principal = z.object({
  userId: z.string().min(1),
  tenantId: z.string().min(1),
  projectId: z.string().min(1).nullable().default(null),
  tier: z.enum(["anonymous", "registered", "privileged"]).default("registered"),
  roles: z.array(z.string()).default([]),
});
export type Principal = z.infer<typeof Principal>;

export const CommandRecord = z.object({
  /** Unique per logical command; the event store dedupes appends by it (I2). */
  id: z.string().min(1).max(200),
  /** e.g. "conversation.create", "conversation.postMessage", "conversation.cancel". */
  type: z.string().min(1),
  aggregateId: z.string().min(1),
  at: z.string(),
  principal: Principal,
  payload: z.record(z.string(), z.unknown()),
  /** Reply stream of the edge node waiting for the decision, if any. */
  replyTo: z.string().optional(),
  requestId: z.string().optional(),
});
export type CommandRecord = z.infer<typeof CommandRecord>;

export function encodeCommand(c: CommandRecord): Buffer {
  return encode(c);
}

export function decodeCommand(bytes: Uint8Array): CommandRecord {
  const parsed = CommandRecord.safeParse(decodeRaw(bytes));
  if (!parsed.success) throw new DecodeError(`not a command record: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

/** The decision sent back to the waiting edge node (and kept for duplicates). */
export type CommandResult =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; error: { code: string; message: string; details?: unknown; retryAfter?: number } };
