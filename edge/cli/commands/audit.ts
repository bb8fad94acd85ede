import type { Command } from "commander";
import { z } from "zod";
import type { AuditTarget } from "../../../core/audit/entry.js";
import type { StreamRef } from "../../../core/keys.js";
import { auditReport, describeReportBreak, type AuditReport, type Progress } from "../audit-report.js";
import { withContext } from "../context.js";
import { CheckFailed, UsageError } from "../exit-codes.js";
import { historySources } from "../history.js";
import { AggregateId, parseArgs } from "../stream-args.js";

/**
 * `tributary audit verify [<conversationId> | --all] [--format text|json]`: hash chain and version
 * continuity (I2) over archive + Redis, and that each stream's head record matches its chain. Exit 1
 * at the first break, naming stream, version, offset and reason (and the archive segment when the
 * archive is what broke); exit 0 otherwise. `--all` walks every aggregate stream (conversations,
 * sessions, ledgers) found by SCAN on every master, with progress lines on stderr (when stderr is a
 * terminal, or with --progress). `--format json` prints
 * the audit report (edge/cli/audit-report.ts) on stdout, whether it passed or not.
 */
// One object, not a union of the two forms: a union's error names no argument ("Invalid input"),
// and "exactly one of <id> and --all" is checked before parsing.
const VerifyArgs = z.object({ conversationId: AggregateId.optional(), all: z.boolean(), format: z.enum(["text", "json"]) });

/** At most one progress line per this many milliseconds (and one at the end). */
const PROGRESS_EVERY_MS = 1000;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

function summaryLine(r: AuditReport, all: boolean): string {
  const counts = `${plural(r.streams, "stream")}, ${plural(r.events, "event")}`;
  if (r.firstBreak) return `audit failed: ${describeReportBreak(r.firstBreak)} (after ${counts} verified)`;
  const kinds = Object.entries(r.byKind)
    .map(([k, v]) => `${k} ${plural(v.streams, "stream")}/${plural(v.events, "event")}`)
    .join(", ");
  return `audit ok: ${counts} verified (versions contiguous, hash chains intact)${all && kinds ? `; ${kinds}` : ""}`;
}

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("integrity checks of the event streams");
  audit
    .command("verify")
    .description("check hash chains and version continuity; exit 1 at the first break, naming it")
    .argument("[conversationId]", "one conversation (or --all)")
    .option("--all", "every aggregate stream in Redis and its archive", false)
    .option("--format <format>", "text (a summary line) or json (the audit report)", "text")
    .option("--progress", "progress lines on stderr with --all (default: when stderr is a terminal)")
    .option("--no-progress", "no progress lines")
    .action(async (conversationId: string | undefined, opts: { all: boolean; format: string; progress?: boolean }) => {
      if (conversationId !== undefined && opts.all) throw new UsageError("give a conversation id or --all, not both");
      if (conversationId === undefined && !opts.all) throw new UsageError("give a conversation id or --all");
      const args = parseArgs(VerifyArgs, { conversationId, all: opts.all, format: opts.format });
      await withContext(async (ctx) => {
        const sources = await historySources(ctx);
        let report: AuditReport;
        if (args.all || args.conversationId === undefined) {
          let last = 0;
          let latest: Progress = { streams: 0, events: 0 };
          // Progress is for a person watching; a pipe (scripts, CI) gets only the result unless asked.
          const show = opts.progress ?? process.stderr.isTTY === true;
          const progress = (p: Progress, force = false): void => {
            latest = p;
            if (!show) return;
            const now = Date.now();
            if (!force && now - last < PROGRESS_EVERY_MS) return;
            last = now;
            process.stderr.write(`audit: ${plural(p.streams, "stream")}, ${plural(p.events, "event")} verified so far\n`);
          };
          report = await auditReport("all", sources.redis.streams(), sources, (p) => progress(p));
          progress(latest, true);
        } else {
          const ref: StreamRef = { kind: "conversation", id: args.conversationId };
          const head = await sources.redis.head(ref);
          if (head.version === 0) throw new CheckFailed(`conversation ${args.conversationId} not found`);
          const target: AuditTarget = { ref, key: sources.redis.keyOf(ref) };
          report = await auditReport(args.conversationId, [target], sources);
        }
        const line = summaryLine(report, args.all);
        process.stdout.write(args.format === "json" ? `${JSON.stringify(report, null, 2)}\n` : `${line}\n`);
        if (report.firstBreak) throw new CheckFailed(line);
      });
    });
}
