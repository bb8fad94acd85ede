import type { Command } from "commander";
import { z } from "zod";
import { createBlobStore } from "../../../core/blob/create.js";
import { parseDuration } from "../../../core/config.js";
import { recoverArchiveIndex } from "../../../core/redis/archive-recovery.js";
import { createArchiver, type ArchiveReport } from "../../../core/redis/archiver.js";
import { withContext } from "../context.js";
import { CheckFailed } from "../exit-codes.js";
import { parseArgs } from "../stream-args.js";

/**
 * `tributary archive [--older-than DURATION] [--trim-log] [--gc] [--recover-index] [--format text|json]`: one archive pass
 * (CONTRACT §1). Moves events older than the retention (RETENTION, or --older-than) from Redis to
 * the blob store, then trims Redis. Exit 1 when a stream could not be archived (its chain or the
 * archive index is inconsistent: run `tributary audit verify`), 3 when Redis or the blob store is
 * unreachable.
 */
const Duration = z.string().transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a duration like 30s, 15m, 1h or 7d" });
    return z.NEVER;
  }
});

// Keys named as the user typed them, so a usage error names the option ("invalid --older-than: …").
const ArchiveArgs = z.object({
  "--older-than": Duration.optional(),
  "--trim-log": z.boolean(),
  "--gc": z.boolean(),
  "--recover-index": z.boolean(),
  "--format": z.enum(["text", "json"]),
});

export function summaryLine(r: ArchiveReport): string {
  const parts = [
    `archived ${r.events} events in ${r.segments} segments`,
    `trimmed ${r.trimmed} entries from ${r.streams} streams`,
    ...(r.logTrimmed > 0 ? [`trimmed ${r.logTrimmed} partition log entries`] : []),
    ...(r.orphansDeleted > 0 ? [`deleted ${r.orphansDeleted} orphan segments`] : []),
    `cutoff ${r.cutoff}`,
  ];
  return parts.join("; ") + (r.failures.length > 0 ? `; ${r.failures.length} streams failed` : "");
}

export function registerArchive(program: Command): void {
  program
    .command("archive")
    .description("move events older than the retention from Redis to the blob store, then trim Redis")
    .option("--older-than <duration>", "archive events older than this (default: RETENTION)")
    .option("--trim-log", "also trim partition logs up to what every consumer group acknowledged and the archive holds", false)
    .option("--gc", "also delete orphan segment blobs left by interrupted runs", false)
    .option("--recover-index", "instead of archiving, rebuild lost archive index entries from the blob store", false)
    .option("--format <format>", "text or json", "text")
    .action(async (opts: { olderThan?: string; trimLog: boolean; gc: boolean; recoverIndex: boolean; format: string }) => {
      const args = parseArgs(ArchiveArgs, {
        "--older-than": opts.olderThan,
        "--trim-log": opts.trimLog,
        "--gc": opts.gc,
        "--recover-index": opts.recoverIndex,
        "--format": opts.format,
      });
      const olderThan = args["--older-than"];
      await withContext(async (ctx) => {
        const redis = await ctx.redis();
        const blob = createBlobStore(ctx.config);
        ctx.onClose(() => blob.close());
        await blob.check();
        if (args["--recover-index"]) {
          const rec = await recoverArchiveIndex(redis, blob, ctx.config.PARTITIONS);
          if (args["--format"] === "json") process.stdout.write(`${JSON.stringify(rec)}\n`);
          else process.stdout.write(`recovered ${rec.recorded} segments of ${rec.streams} archived streams\n`);
          if (rec.conflicts.length > 0) throw new CheckFailed(`index recovery stopped for ${rec.conflicts.length} streams, first ${rec.conflicts[0]?.stream}: ${rec.conflicts[0]?.error}`);
          return;
        }
        const archiver = createArchiver(redis, blob, { partitions: ctx.config.PARTITIONS, retentionMs: ctx.config.RETENTION, log: ctx.log });
        const report = await archiver.runOnce({ ...(olderThan === undefined ? {} : { olderThanMs: olderThan }), trimLog: args["--trim-log"], gc: args["--gc"] });
        if (args["--format"] === "json") process.stdout.write(`${JSON.stringify(report)}\n`);
        else {
          process.stdout.write(`${summaryLine(report)}\n`);
          for (const f of report.failures) process.stdout.write(`failed ${f.stream}: ${f.error}\n`);
        }
        if (report.failures.length > 0) {
          const first = report.failures[0];
          throw new CheckFailed(`archive failed for ${report.failures.length} streams, first ${first?.stream}: ${first?.error}`);
        }
      });
    });
}
