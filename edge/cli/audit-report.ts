import { ArchiveIntegrityError } from "../../core/archive/manifest.js";
import type { AuditTarget, StoredEntry } from "../../core/audit/entry.js";
import { history } from "../../core/audit/history.js";
import { describeBreak, verifyStream, type AuditBreak, type AuditBreakKind } from "../../core/audit/verify.js";
import type { AuditSources } from "../../core/audit/walker.js";

/**
 * The audit report behind `tributary audit verify` (issue 6 item 3): walk streams (archive + Redis)
 * until the first break, counting streams and events per aggregate kind, and turn an archive that
 * cannot be read back (a missing or rewritten segment: ArchiveIntegrityError from the archived
 * reader) into a break that names the segment, instead of a crash — a tampered archive is exactly
 * what an audit exists to find.
 */
export type ReportBreakKind = AuditBreakKind | "archive-integrity";

export interface ReportBreak extends Omit<AuditBreak, "kind"> {
  kind: ReportBreakKind;
  /** The archive segment's blob key, for `archive-integrity` breaks. */
  segment?: string;
}

export interface AuditReport {
  ok: boolean;
  /** `all`, or the one conversation asked for. */
  scope: string;
  streams: number;
  events: number;
  byKind: Record<string, { streams: number; events: number }>;
  /** The walk stops at the first break; null when there is none. */
  firstBreak: ReportBreak | null;
  startedAt: string;
  finishedAt: string;
}

export interface Progress {
  streams: number;
  events: number;
}

/** Pass entries through, counting them, so a walk cut short by an exception still knows where. */
async function* counted(entries: AsyncIterable<StoredEntry>, seen: { n: number }): AsyncGenerator<StoredEntry> {
  for await (const e of entries) {
    seen.n += 1;
    yield e;
  }
}

export async function auditTarget(target: AuditTarget, sources: AuditSources): Promise<{ events: number; break?: ReportBreak }> {
  // Head first: events appended while we walk only extend the chain past it.
  const head = sources.head ? await sources.head(target.ref) : undefined;
  const seen = { n: 0 };
  try {
    const r = await verifyStream(target.key, counted(history(sources, target.ref), seen), head === undefined ? {} : { head });
    return r.break ? { events: r.events, break: r.break } : { events: r.events };
  } catch (e) {
    if (!(e instanceof ArchiveIntegrityError)) throw e;
    // Entries before the unreadable segment were verified; the break is at the next version.
    return {
      events: seen.n,
      break: {
        stream: target.key,
        version: seen.n + 1,
        offset: null,
        kind: "archive-integrity",
        reason: e.message,
        ...(e.segment === undefined ? {} : { segment: e.segment }),
      },
    };
  }
}

export async function auditReport(
  scope: string,
  targets: AsyncIterable<AuditTarget> | Iterable<AuditTarget>,
  sources: AuditSources,
  onProgress?: (p: Progress) => void,
): Promise<AuditReport> {
  const startedAt = new Date().toISOString();
  const report: AuditReport = { ok: true, scope, streams: 0, events: 0, byKind: {}, firstBreak: null, startedAt, finishedAt: startedAt };
  for await (const target of targets) {
    const r = await auditTarget(target, sources);
    report.streams += 1;
    report.events += r.events;
    const k = (report.byKind[target.ref.kind] ??= { streams: 0, events: 0 });
    k.streams += 1;
    k.events += r.events;
    onProgress?.({ streams: report.streams, events: report.events });
    if (r.break) {
      report.ok = false;
      report.firstBreak = r.break;
      break;
    }
  }
  report.finishedAt = new Date().toISOString();
  return report;
}

/** One line naming a break (with its segment when the archive is what broke). */
export function describeReportBreak(b: ReportBreak): string {
  if (b.kind === "archive-integrity") {
    return `stream ${b.stream}, version ${b.version}: archive segment ${b.segment ?? "(unknown)"} cannot be trusted: ${b.reason}`;
  }
  return describeBreak(b as AuditBreak);
}
