import { z } from "zod";
import { isOffset } from "../../core/envelope.js";
import { UsageError } from "./exit-codes.js";

/** Argument schemas shared by commands that take aggregate ids and stream offsets. */
export const AggregateId = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "expected 1..128 of [A-Za-z0-9_.:-]");
/** A stream entry id ("1732212345678-0", "1732212345678") or "0" for the beginning. */
export const Offset = z.string().refine(isOffset, "expected a stream offset like 1732212345678-0 (or 0)");

/** zod parse → value, or a UsageError (exit 2) naming the argument. */
export function parseArgs<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const name = issue && issue.path.length > 0 ? issue.path.join(".") : "arguments";
  throw new UsageError(`invalid ${name}: ${issue?.message ?? "invalid"}`);
}
