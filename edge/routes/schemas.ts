import { z } from "zod";
import { isOffset } from "../../core/envelope.js";
import { TIERS } from "../auth/principal.js";

/**
 * Request shapes of CONTRACT §3. Objects are strict: an unknown field is a VALIDATION_FAILED, not
 * silently dropped, so a client's typo (`maxToken`) is caught rather than ignored.
 */
const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

export const MAX_MESSAGE_CHARS = 32_000;

export const CreateConversationBody = z.strictObject({
  title: z.string().trim().min(1).max(200).optional(),
  model: z.string().min(1).max(100).regex(/^[A-Za-z0-9_.:/-]+$/, "expected a model name").optional(),
});

export const PostMessageBody = z.strictObject({
  // Characters, not UTF-16 units: an emoji counts once.
  text: z
    .string()
    .min(1)
    .max(MAX_MESSAGE_CHARS * 2)
    .refine((s) => codePoints(s) <= MAX_MESSAGE_CHARS, { message: `text must be at most ${MAX_MESSAGE_CHARS} characters` }),
  clientMessageId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "clientMessageId must be 1..64 of [A-Za-z0-9_.:-]"),
  maxTokens: z.number().int().min(1).max(1_000_000).optional(),
});

export const CancelBody = z.strictObject({}).optional();

export const IdempotencyKey = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "Idempotency-Key must be 1..128 of [A-Za-z0-9_.:-]");

export const ListConversationsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});

export const EventsJsonQuery = z.object({
  format: z.literal("json"),
  from: z.string().refine(isOffset, { message: "from must be a stream offset like 1732212345678-0 or 0" }).default("0"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const UserIdParam = z.string().regex(/^[A-Za-z0-9_.:@|-]{1,128}$/, "expected a user id");

export const SetQuotaBody = z.strictObject({
  tier: z.enum(TIERS).optional(),
  dailyTokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  maxConcurrent: z.number().int().min(0).max(10_000).optional(),
  topUpTokens: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "expected YYYY-MM-DD")
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), {
    message: "not a calendar day",
  });

export const SpendQuery = z
  .object({
    from: day,
    to: day,
    groupBy: z.enum(["user", "model", "day", "project"]).default("day"),
  })
  .refine((q) => q.from <= q.to, { message: "from must not be after to", path: ["from"] });

/** URLSearchParams → plain object (first value of each name) for zod. */
export function queryObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (!(k in out)) out[k] = v;
  return out;
}
