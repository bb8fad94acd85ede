import type { Command } from "commander";
import { z } from "zod";
import { decodeRaw } from "../../../core/codec.js";
import { isTributaryError } from "../../../core/errors.js";
import { deadLetters, parseDeadLetterId, type DeadLetterEntry } from "../../../core/redis/dead-letters.js";
import { withContext } from "../context.js";
import { CheckFailed, UsageError } from "../exit-codes.js";
import { parseArgs } from "../stream-args.js";

/**
 * `tributary dlq list | show <id> | redrive [<id> | --all] | purge [<id> | --all]` (CONTRACT §1),
 * over every partition (PARTITIONS). Ids are `<partition>/<entryId>`, as `list` prints them.
 * Exit 1 when the named dead letter does not exist, 2 on bad arguments, 3 when Redis is down.
 */
const Format = z.enum(["text", "json"]);
const Limit = z.coerce.number().int().min(1).max(1_000_000);
const Group = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "expected 1..64 of [A-Za-z0-9_.:-]");

/** Validate an id before connecting, so a typo is a usage error (exit 2) even while Redis is down. */
function checkId(id: string, partitions: number): string {
  try {
    parseDeadLetterId(id, partitions);
    return id;
  } catch (e) {
    throw new UsageError(`invalid <id> ${JSON.stringify(id)}: ${isTributaryError(e) ? e.message : String(e)}`);
  }
}

/** Exactly one of `<id>` and `--all`. */
function target(id: string | undefined, all: boolean, partitions: number): string {
  if (id !== undefined && all) throw new UsageError("give either a dead letter id or --all, not both");
  if (id === undefined && !all) throw new UsageError("give a dead letter id (see `tributary dlq list`) or --all");
  return id === undefined ? "all" : checkId(id, partitions);
}

/** A field for humans: msgpack payloads decoded, text as text, anything else as base64. */
function renderField(name: string, v: Buffer): unknown {
  if (name === "e") {
    try {
      return decodeRaw(v);
    } catch {
      return { base64: v.toString("base64"), note: "not valid msgpack" };
    }
  }
  const text = v.toString("utf8");
  return Buffer.from(text, "utf8").equals(v) && !/[\u0000-\u0008\u000e-\u001f]/.test(text) ? text : { base64: v.toString("base64") };
}

export function deadLetterJson(d: DeadLetterEntry): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d.fields)) fields[k] = renderField(k, v);
  return {
    id: d.id,
    partition: d.partition,
    group: d.group,
    origin: d.origin,
    originId: d.originId,
    deliveries: d.deliveries,
    at: d.at,
    error: d.error,
    ...(d.missing ? { missing: true } : {}),
    fields,
  };
}

export function deadLetterLine(d: DeadLetterEntry): string {
  return [d.id, d.group, `${d.origin}@${d.originId}`, `deliveries=${d.deliveries}`, d.at, d.error.replace(/\s+/g, " ")].join("\t");
}

export function registerDlq(program: Command): void {
  const dlq = program.command("dlq").description("dead letters: list, show, redrive, purge");

  dlq
    .command("list")
    .description("list dead letters of every partition: id, group, origin, deliveries, time, error")
    .option("--group <group>", "only this consumer group")
    .option("--partition <n>", "only this partition")
    .option("--limit <n>", "at most this many", "100")
    .option("--format <format>", "text or json (one JSON object per line)", "text")
    .action(async (opts: { group?: string; partition?: string; limit: string; format: string }) => {
      await withContext(async (ctx) => {
        const P = ctx.config.PARTITIONS;
        const args = parseArgs(
          z.object({
            "--group": Group.optional(),
            "--partition": z.coerce.number().int().min(0).max(P - 1, `must be below PARTITIONS (${P})`).optional(),
            "--limit": Limit,
            "--format": Format,
          }),
          { "--group": opts.group, "--partition": opts.partition, "--limit": opts.limit, "--format": opts.format },
        );
        const store = deadLetters(await ctx.redis(), P);
        const list = await store.list({
          limit: args["--limit"],
          ...(args["--group"] === undefined ? {} : { group: args["--group"] }),
          ...(args["--partition"] === undefined ? {} : { partition: args["--partition"] }),
        });
        const out = list.map((d) => (args["--format"] === "json" ? JSON.stringify(deadLetterJson(d)) : deadLetterLine(d)));
        if (out.length > 0) process.stdout.write(`${out.join("\n")}\n`);
        if (args["--format"] === "text") process.stderr.write(`${list.length} dead letters\n`);
      });
    });

  dlq
    .command("show <id>")
    .description("print one dead letter as JSON, its payload decoded")
    .action(async (id: string) => {
      await withContext(async (ctx) => {
        checkId(id, ctx.config.PARTITIONS);
        const d = await deadLetters(await ctx.redis(), ctx.config.PARTITIONS).show(id);
        if (!d) throw new CheckFailed(`no dead letter ${id}`);
        process.stdout.write(`${JSON.stringify(deadLetterJson(d), null, 2)}\n`);
      });
    });

  for (const [name, verb, what] of [
    ["redrive", "redriven", "put dead letters back for the consumer group that failed them"],
    ["purge", "purged", "delete dead letters"],
  ] as const) {
    dlq
      .command(`${name} [id]`)
      .description(`${what} (one id, or --all)`)
      .option("--all", "every dead letter of every partition", false)
      .action(async (id: string | undefined, opts: { all: boolean }) => {
        await withContext(async (ctx) => {
          const which = target(id, opts.all, ctx.config.PARTITIONS);
          const store = deadLetters(await ctx.redis(), ctx.config.PARTITIONS);
          let n: number;
          try {
            n = name === "redrive" ? await store.redrive(which) : await store.purge(which);
          } catch (e) {
            if (isTributaryError(e) && e.code === "NOT_FOUND") throw new CheckFailed(e.message);
            throw e;
          }
          process.stdout.write(`${verb} ${n} dead letter${n === 1 ? "" : "s"}\n`);
        });
      });
  }
}
