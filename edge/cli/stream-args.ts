import { z } from "zod";
import { isOffset } from "../../core/envelope.js";
import { UsageError } from "./exit-codes.js";

/** Argument schemas shared by commands that take aggregate ids and stream offsets. */
export const AggregateId = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "expected 1..128 of [A-Za-z0-9_.:-]");
/** A stream entry id ("1732212345678-0", "1732212345678") or "0" for the beginning. */
export const Offset = z.string().refine(isOffset, "expected a stream offset like 1732212345678-0 (or 0)");

/** Keys that are positional arguments (named `<key>`); every other key is an option (`--kebab-case`). */
const POSITIONAL = new Set(["conversationId", "id", "name"]);

/** How a usage error names an input key: as the user typed it (`--at-version`, `<conversationId>`). */
export function argName(key: string): string {
  if (key.startsWith("-")) return key;
  if (POSITIONAL.has(key)) return `<${key}>`;
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * zod parse → value, or a UsageError (exit 2) naming the argument as typed on the command line;
 * `names` overrides the name of keys that differ from their option (e.g. tenantId → --tenant).
 */
export function parseArgs<T extends z.ZodType>(schema: T, input: unknown, names: Record<string, string> = {}): z.infer<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = issue && issue.path.length > 0 ? String(issue.path[0]) : undefined;
  const name = key === undefined ? "arguments" : (names[key] ?? argName(key));
  throw new UsageError(`invalid ${name}: ${issue?.message ?? "invalid"}`);
}
