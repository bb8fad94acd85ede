import type { Logger } from "pino";
import { streamArchivePrefix, type SegmentManifest } from "../archive/manifest.js";
import { cutoffOffset, nextOffset, planSegments } from "../archive/plan.js";
import { encodeSegment, type ArchiveEntry, type SegmentCodec } from "../archive/segment.js";
import type { BlobStore } from "../blob/blob-store.js";
import { GENESIS_HASH } from "../chain.js";
import { compareOffsets } from "../envelope.js";
import { errorMessage, TributaryError } from "../errors.js";
import { keys, streamKeys, type StreamRef } from "../keys.js";
import { createArchiveIndex, type ArchiveIndex } from "./archive-index.js";
import type { RedisClient } from "./connection.js";
import { createRedisEntrySource } from "./entry-source.js";
import { archivePartitionLog, collectLogOrphans, logArchiveHead, type LogArchiveStep } from "./log-archive.js";
import { xrangeRaw } from "./stream-range.js";

/**
 * The archiver (issue 6): moves events older than the retention from Redis to the blob store.
 *
 * Per stream, one segment at a time, in this order — each step is durable before the next starts:
 *   read   XRANGE the entries after the archived prefix and older than the cutoff
 *   encode verify their chain from the archive's last hash, build the segment
 *   store  PUT the segment (deterministic key and bytes: a rerun overwrites it with the same bytes)
 *   record add its manifest to the index (Lua: only if it continues the archived prefix exactly)
 *   trim   XTRIM MINID just past the newest *recorded* offset
 * A crash between any two steps leaves either an orphan blob (harmless; the rerun rewrites or
 * replaces it) or recorded-but-untrimmed entries (readers take them from the archive; the rerun
 * trims them first). Nothing is trimmed that the index does not cover, so nothing is lost.
 *
 * Streams are found with SCAN over `{p*}:es:*` on every master (core/redis/entry-source.ts): it
 * finds every stream whatever happened to the partition logs, at O(keys) per pass, which is fine
 * for a background job that runs every few minutes. The meta hash (`{pN}:meta:…`, version and
 * head hash) is a separate key and is never touched, so appends continue the chain unchanged.
 */
export type ArchiveStep = "scanned" | "read" | "encoded" | "stored" | "recorded" | "trimmed" | LogArchiveStep | "log-trimmed";

export interface ArchiveFaults {
  /** Called at every step boundary; tests throw here to simulate a crash at that point. */
  at(step: ArchiveStep, detail: { stream?: string; partition?: number }): void | Promise<void>;
}

export interface ArchiverOptions {
  partitions: number;
  /** RETENTION: events older than this move to the archive. */
  retentionMs: number;
  /** Events per segment [1000]: bigger segments compress better, smaller ones make old reads cheaper. */
  maxSegmentEvents?: number;
  /** Stored bytes per segment before compression [4 MiB]: keeps a segment one PUT and one read. */
  maxSegmentBytes?: number;
  codec?: SegmentCodec;
  /** Clock, for tests [Date.now]. */
  now?: () => number;
  faults?: ArchiveFaults;
  log?: Logger;
  /**
   * Only archive streams of the partitions this accepts. With several `start` processes, pass
   * `(p) => lease.owned().includes(p)` of a PartitionLease with role "archiver" so they share the
   * work instead of repeating it. Without it every archiver takes every stream — still correct (the
   * record script arbitrates), only wasteful.
   */
  partitionFilter?: (partition: number) => boolean;
}

export interface StreamArchiveResult {
  stream: string;
  segments: number;
  events: number;
  trimmed: number;
}

export interface ArchiveReport {
  /** Streams looked at. */
  streams: number;
  segments: number;
  events: number;
  /** Entries removed from aggregate streams. */
  trimmed: number;
  /** Entries removed from partition logs (only with `trimLog`). */
  logTrimmed: number;
  /** Orphan segment blobs deleted (only with `gc`). */
  orphansDeleted: number;
  /** Streams skipped because `partitionFilter` refused their partition. */
  skipped: number;
  /** Streams that could not be archived, with the reason; the rest of the run went on. */
  failures: Array<{ stream: string; error: string }>;
  cutoff: string;
}

export interface RunOptions {
  /** Override the retention for this run (`tributary archive --older-than`). */
  olderThanMs?: number;
  /** Also archive and trim partition logs (see trimPartitionLog). */
  trimLog?: boolean;
  /** Also delete orphan segment blobs (see collectOrphans): one LIST per stream. */
  gc?: boolean;
}

export interface Archiver {
  /** One pass over every stream. Dependency failures (Redis, blob store) throw; integrity failures are reported per stream. */
  runOnce(opts?: RunOptions): Promise<ArchiveReport>;
  /** Archive one stream up to `cutoff` (exclusive offset). */
  archiveStream(ref: StreamRef, cutoff: string): Promise<StreamArchiveResult>;
  /**
   * Archive partition log `p`'s entries older than `cutoff` (log segments, see log-archive.ts), then
   * trim the log up to the first entry that some consumer group has not acknowledged or that is
   * not archived — whichever comes first. A log without consumer groups is archived, not trimmed.
   */
  trimPartitionLog(p: number, cutoff: string): Promise<number>;
  /**
   * Delete the stream's segment blobs that the index does not reference and never can: those whose
   * first version is at or below the index's last version (a crash between store and record, then
   * a rerun with other bounds). Blobs beyond the index's end are left alone — an archiver may be
   * between its store and record steps right now.
   */
  collectOrphans(ref: StreamRef): Promise<number>;
  /** Run `runOnce` every `intervalMs` until stopped; errors are logged, never thrown. */
  start(intervalMs: number, opts?: RunOptions): { stop(): Promise<void> };
  readonly index: ArchiveIndex;
}

export function createArchiver(redis: RedisClient, blob: BlobStore, opts: ArchiverOptions): Archiver {
  const { partitions } = opts;
  const maxEvents = opts.maxSegmentEvents ?? 1000;
  const maxBytes = opts.maxSegmentBytes ?? 4 * 1024 * 1024;
  const now = opts.now ?? Date.now;
  const index = createArchiveIndex(redis, partitions);
  const source = createRedisEntrySource(redis, partitions);
  const fault = async (step: ArchiveStep, detail: { stream?: string; partition?: number }) => {
    if (opts.faults) await opts.faults.at(step, detail);
  };

  /** Trim the stream just past the index's newest segment: never past what the index covers. */
  async function trimToIndex(ref: StreamRef, stream: string): Promise<number> {
    const head = await index.head(ref);
    if (!head) return 0;
    const removed = Number(await redis.xtrim(stream, "MINID", nextOffset(head.lastOffset)));
    await fault("trimmed", { stream });
    return removed;
  }

  async function archiveStream(ref: StreamRef, cutoff: string): Promise<StreamArchiveResult> {
    const { stream } = streamKeys(ref, partitions);
    const result: StreamArchiveResult = { stream, segments: 0, events: 0, trimmed: 0 };
    // A previous run may have recorded a segment and crashed before trimming.
    result.trimmed += await trimToIndex(ref, stream);
    for (;;) {
      const head: SegmentManifest | null = await index.head(ref);
      const entries = await xrangeRaw(redis, stream, head ? { from: head.lastOffset, limit: maxEvents } : { limit: maxEvents });
      await fault("read", { stream });
      const old: ArchiveEntry[] = [];
      for (const en of entries) {
        if (compareOffsets(en.id, cutoff) >= 0) break;
        const bytes = en.fields.get("e");
        const h = en.fields.get("h");
        if (!bytes || !h) throw new TributaryError("INTERNAL", `${stream} entry ${en.id} lacks its e/h fields`, { permanent: true });
        old.push({ offset: en.id, bytes, hash: h.toString("utf8") });
      }
      if (old.length === 0) return result;
      let prevHash = head?.lastHash ?? GENESIS_HASH;
      let firstVersion = (head?.lastVersion ?? 0) + 1;
      // The cutoff is already applied; the plan only splits by the segment caps.
      for (const seg of planSegments(old, { nowMs: Number.MAX_SAFE_INTEGER, retentionMs: 0, maxEvents, maxBytes })) {
        const enc = await encodeSegment(ref, seg, { prevHash, firstVersion }, opts.codec ? { codec: opts.codec } : {});
        await fault("encoded", { stream });
        const m = enc.manifest;
        await blob.put(m.key, enc.bytes, {
          sha256: m.sha256,
          "first-version": String(m.firstVersion),
          "last-version": String(m.lastVersion),
          "prev-hash": m.prevHash,
          "last-hash": m.lastHash,
        });
        await fault("stored", { stream });
        await index.record(ref, m);
        await fault("recorded", { stream });
        result.trimmed += await trimToIndex(ref, stream);
        result.segments += 1;
        result.events += m.count;
        prevHash = m.lastHash;
        firstVersion = m.lastVersion + 1;
      }
      opts.log?.debug({ stream, segments: result.segments, events: result.events }, "archived");
      if (entries.length < maxEvents || old.length < entries.length) return result;
    }
  }

  /** XINFO GROUPS (RESP2: flat name/value arrays) → the first log id some group still needs. */
  async function firstUnacked(log: string): Promise<string | null> {
    let groups: unknown;
    try {
      groups = await redis.xinfo("GROUPS", log);
    } catch (e) {
      if (e instanceof Error && /no such key/i.test(e.message)) return null;
      throw e;
    }
    if (!Array.isArray(groups) || groups.length === 0) return null; // nobody consumed it yet: keep all
    let bound: string | null = null;
    for (const g of groups) {
      if (!Array.isArray(g)) continue;
      const f = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
      const name = String(f.get("name"));
      const lastDelivered = String(f.get("last-delivered-id") ?? "0-0");
      let gBound = nextOffset(lastDelivered);
      if (Number(f.get("pending") ?? 0) > 0) {
        const summary = (await redis.xpending(log, name)) as unknown[];
        const minPending = summary[1];
        if (typeof minPending === "string" && compareOffsets(minPending, gBound) < 0) gBound = minPending;
      }
      if (bound === null || compareOffsets(gBound, bound) < 0) bound = gBound;
    }
    return bound;
  }

  async function trimPartitionLog(p: number, cutoff: string): Promise<number> {
    const log = keys.log(p);
    // First into the archive (so rebuilds still see every entry), then out of Redis.
    await archivePartitionLog(redis, blob, p, cutoff, { maxEvents, fault: (step) => fault(step, { partition: p }) });
    const acked = await firstUnacked(log);
    if (acked === null) return 0;
    const head = await logArchiveHead(redis, p);
    if (!head) return 0;
    const archived = nextOffset(head.lastId);
    const bound = compareOffsets(acked, archived) < 0 ? acked : archived;
    const removed = Number(await redis.xtrim(log, "MINID", bound));
    await fault("log-trimmed", { partition: p });
    return removed;
  }

  async function collectOrphans(ref: StreamRef): Promise<number> {
    const segments = await index.segments(ref);
    const last = segments[segments.length - 1];
    if (!last) return 0;
    const recorded = new Set(segments.map((m) => m.key));
    let deleted = 0;
    for (const b of await blob.list(streamArchivePrefix(ref))) {
      if (recorded.has(b.key)) continue;
      const m = /\/(\d{12})-(\d{12})\.seg$/.exec(b.key);
      if (!m || Number(m[1]) > last.lastVersion) continue;
      await blob.delete(b.key);
      deleted += 1;
    }
    return deleted;
  }

  async function runOnce(ro: RunOptions = {}): Promise<ArchiveReport> {
    const cutoff = cutoffOffset(now(), ro.olderThanMs ?? opts.retentionMs);
    const report: ArchiveReport = { streams: 0, segments: 0, events: 0, trimmed: 0, logTrimmed: 0, orphansDeleted: 0, skipped: 0, failures: [], cutoff };
    const targets: StreamRef[] = [];
    for await (const t of source.streams()) {
      if (opts.partitionFilter && !opts.partitionFilter(streamKeys(t.ref, partitions).partition)) report.skipped += 1;
      else targets.push(t.ref);
    }
    await fault("scanned", {});
    for (const ref of targets) {
      report.streams += 1;
      try {
        const r = await archiveStream(ref, cutoff);
        report.segments += r.segments;
        report.events += r.events;
        report.trimmed += r.trimmed;
        if (ro.gc) report.orphansDeleted += await collectOrphans(ref);
      } catch (e) {
        // Integrity problems (broken chain, index race) stay with their stream; the rest goes on.
        if (e instanceof TributaryError && e.permanent) {
          const stream = streamKeys(ref, partitions).stream;
          report.failures.push({ stream, error: errorMessage(e) });
          opts.log?.error({ stream, err: errorMessage(e) }, "archive failed for stream");
          continue;
        }
        throw e;
      }
    }
    if (ro.trimLog) {
      for (let p = 0; p < partitions; p++) {
        if (opts.partitionFilter && !opts.partitionFilter(p)) continue;
        try {
          report.logTrimmed += await trimPartitionLog(p, cutoff);
          if (ro.gc) report.orphansDeleted += await collectLogOrphans(redis, blob, p);
        } catch (e) {
          // A malformed log entry or a racing archiver stays with its partition; the rest goes on.
          if (!(e instanceof TributaryError && e.permanent)) throw e;
          report.failures.push({ stream: keys.log(p), error: errorMessage(e) });
          opts.log?.error({ stream: keys.log(p), err: errorMessage(e) }, "log archive failed for partition");
        }
      }
    }
    return report;
  }

  function start(intervalMs: number, ro: RunOptions = {}): { stop(): Promise<void> } {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const tick = () => {
      running = runOnce(ro)
        .then((r) => {
          if (r.events > 0 || r.failures.length > 0) opts.log?.info({ ...r, failures: r.failures.length }, "archive pass");
        })
        .catch((e: unknown) => opts.log?.error({ err: errorMessage(e) }, "archive pass failed"))
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, intervalMs);
        });
    };
    timer = setTimeout(tick, intervalMs);
    return {
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        await running;
      },
    };
  }

  return { runOnce, archiveStream, trimPartitionLog, collectOrphans, start, index };
}
