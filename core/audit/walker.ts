import type { StreamHead } from "../event-store.js";
import type { StreamRef } from "../keys.js";
import type { AuditTarget } from "./entry.js";
import { history, type HistorySources } from "./history.js";
import { verifyStream, type AuditBreak, type StreamAuditResult } from "./verify.js";

/**
 * Walks streams through the history seam (archive first, then Redis) and verifies each one. Storage
 * specifics stay behind the interfaces: core/redis/entry-source.ts supplies them for Redis.
 */
export interface AuditSources extends HistorySources {
  /** The stream's head record, compared with the chain's end; omit to skip that check. */
  head?: ((stream: StreamRef) => Promise<StreamHead>) | undefined;
}

export async function auditStream(target: AuditTarget, sources: AuditSources): Promise<StreamAuditResult> {
  // Head first: events appended while we walk only extend the chain past it.
  const head = sources.head ? await sources.head(target.ref) : undefined;
  return verifyStream(target.key, history(sources, target.ref), head === undefined ? {} : { head });
}

export interface AuditSummary {
  streams: number;
  events: number;
  /** The first break found; the walk stops there. */
  break?: AuditBreak;
}

/** Verify every stream `targets` yields, stopping at the first break. */
export async function auditAll(
  targets: AsyncIterable<AuditTarget>,
  sources: AuditSources,
  onStream?: (r: StreamAuditResult) => void,
): Promise<AuditSummary> {
  const summary: AuditSummary = { streams: 0, events: 0 };
  for await (const target of targets) {
    const r = await auditStream(target, sources);
    onStream?.(r);
    summary.streams += 1;
    summary.events += r.events;
    if (r.break) {
      summary.break = r.break;
      return summary;
    }
  }
  return summary;
}
