import { ArchiveIntegrityError } from "../archive/manifest.js";
import { decodeLogSegment, encodeLogSegment, parseLogManifest, type LogArchiveEntry, type LogSegmentManifest } from "../archive/log-segment.js";
import type { BlobStore } from "../blob/blob-store.js";
import { compareOffsets } from "../envelope.js";
import { TributaryError } from "../errors.js";
import { keys, tag } from "../keys.js";
import type { RedisClient } from "./connection.js";
import { LuaScript } from "./lua-script.js";
import { rangeStart, xrangeRaw } from "./stream-range.js";

/**
 * The partition logs' archive: `{pN}:log` entries older than the retention go to blob segments
 * (`archive-log/p<N>/…`) recorded in `{pN}:archive:log`, before the log is trimmed — so
 * `projections rebuild` (I1) can still read every entry, through `createArchivedLogSource`.
 * Same discipline as aggregate streams: store, record (Lua: only right after the archived
 * prefix), then trim no further than the index; entries after the index's end are always in Redis.
 */
export const logArchiveIndexKey = (partition: number): string => `${tag(partition)}:archive:log`;

const RECORD = LuaScript.file("archive-log-record-1.lua");

export type LogArchiveStep = "log-read" | "log-encoded" | "log-stored" | "log-recorded";

function parseIndex(members: string[]): LogSegmentManifest[] {
  const out = members.map(parseLogManifest);
  for (let i = 1; i < out.length; i++) {
    if (compareOffsets((out[i - 1] as LogSegmentManifest).lastId, (out[i] as LogSegmentManifest).firstId) >= 0) {
      throw new ArchiveIntegrityError(`log archive index of partition ${(out[i] as LogSegmentManifest).partition} overlaps at ${(out[i] as LogSegmentManifest).firstId}`);
    }
  }
  return out;
}

export async function logArchiveSegments(redis: RedisClient, partition: number): Promise<LogSegmentManifest[]> {
  return parseIndex(await redis.zrange(logArchiveIndexKey(partition), "0", "-1"));
}

export async function logArchiveHead(redis: RedisClient, partition: number): Promise<LogSegmentManifest | null> {
  const [last] = await redis.zrange(logArchiveIndexKey(partition), "-1", "-1");
  return last === undefined ? null : parseLogManifest(last);
}

/** Archive the log entries of `partition` older than `cutoff`. Returns how many entries went into new segments. */
export async function archivePartitionLog(
  redis: RedisClient,
  blob: BlobStore,
  partition: number,
  cutoff: string,
  o: { maxEvents?: number; fault?: (step: LogArchiveStep) => Promise<void> } = {},
): Promise<{ segments: number; entries: number }> {
  const max = o.maxEvents ?? 1000;
  const fault = o.fault ?? (async () => undefined);
  const log = keys.log(partition);
  const out = { segments: 0, entries: 0 };
  for (;;) {
    const head = await logArchiveHead(redis, partition);
    const after = head?.lastId ?? "0-0";
    const page = await xrangeRaw(redis, log, { from: after, limit: max });
    await fault("log-read");
    const old: LogArchiveEntry[] = [];
    for (const en of page) {
      if (compareOffsets(en.id, cutoff) >= 0) break;
      const k = en.fields.get("k");
      const off = en.fields.get("o");
      const e = en.fields.get("e");
      const h = en.fields.get("h");
      if (!k || !off || !e || !h) throw new TributaryError("INTERNAL", `${log} entry ${en.id} lacks its k/o/e/h fields`, { permanent: true });
      old.push({ id: en.id, k: k.toString("utf8"), o: off.toString("utf8"), e, h: h.toString("utf8") });
    }
    if (old.length === 0) return out;
    const seg = await encodeLogSegment(partition, old);
    await fault("log-encoded");
    await blob.put(seg.manifest.key, seg.bytes, { sha256: seg.manifest.sha256, "first-id": seg.manifest.firstId, "last-id": seg.manifest.lastId });
    await fault("log-stored");
    try {
      await RECORD.run(redis, [logArchiveIndexKey(partition)], [JSON.stringify(seg.manifest), after, seg.manifest.lastId]);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("ARCHIVE_GAP")) throw new ArchiveIntegrityError(`${logArchiveIndexKey(partition)}: ${e.message}`, seg.manifest.key, e);
      throw e;
    }
    await fault("log-recorded");
    out.segments += 1;
    out.entries += old.length;
    if (page.length < max || old.length < page.length) return out;
  }
}

/** One partition-log entry, shaped like projections' LogRecord (fields k, o, e, h as raw bytes). */
export interface ArchivedLogRecord {
  partition: number;
  id: string;
  fields: Map<string, Buffer>;
}

export interface ArchivedLogSource {
  /** Entries strictly after `after` ("0-0" = the beginning), oldest first, at most `limit`, up to `to` inclusive: archive, then Redis. */
  range(partition: number, after: string, opts: { limit: number; to?: string }): Promise<ArchivedLogRecord[]>;
}

/**
 * A partition-log reader over archive + Redis, for the projector and `projections rebuild`. Each
 * page is one MULTI (index + XRANGE, same slot) for the same reason as the event reader: the
 * archived prefix and the Redis tail must be seen at one instant.
 */
export function createArchivedLogSource(redis: RedisClient, blob: BlobStore, o: { cacheSegments?: number } = {}): ArchivedLogSource {
  const cache = new Map<string, LogArchiveEntry[]>();
  const cacheSize = o.cacheSegments ?? 8;
  async function open(m: LogSegmentManifest): Promise<LogArchiveEntry[]> {
    const hit = cache.get(m.sha256);
    if (hit) return hit;
    const bytes = await blob.get(m.key);
    if (bytes === null) throw new ArchiveIntegrityError(`log segment ${m.key} is missing from the blob store`, m.key);
    const entries = await decodeLogSegment(bytes, m);
    cache.set(m.sha256, entries);
    if (cache.size > cacheSize) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    return entries;
  }
  const record = (partition: number, x: LogArchiveEntry): ArchivedLogRecord => ({
    partition,
    id: x.id,
    fields: new Map([
      ["k", Buffer.from(x.k, "utf8")],
      ["o", Buffer.from(x.o, "utf8")],
      ["e", Buffer.from(x.e)],
      ["h", Buffer.from(x.h, "utf8")],
    ]),
  });

  return {
    async range(partition, after, opts) {
      const limit = opts.limit;
      const to = opts.to;
      let cursor: string | undefined = after === "0-0" || after === "0" ? undefined : after;
      const out: ArchivedLogRecord[] = [];
      const isAfter = (id: string) => cursor === undefined || compareOffsets(id, cursor) > 0;
      const beyond = (id: string) => to !== undefined && compareOffsets(id, to) > 0;
      while (out.length < limit) {
        const want = Math.min(limit - out.length, 1000);
        const replies = await redis
          .multi()
          .zrange(logArchiveIndexKey(partition), "0", "-1")
          .xrangeBuffer(keys.log(partition), rangeStart(cursor), to ?? "+", "COUNT", want)
          .exec();
        if (!replies) throw new TributaryError("UNAVAILABLE", `read of ${keys.log(partition)} was aborted`);
        const [e1, idx] = replies[0] ?? [new Error("no index reply"), null];
        const [e2, xr] = replies[1] ?? [new Error("no XRANGE reply"), null];
        if (e1) throw e1;
        if (e2) throw e2;
        const segs = parseIndex(idx as string[]);
        const end = segs[segs.length - 1]?.lastId;
        if (end !== undefined && (cursor === undefined || compareOffsets(cursor, end) < 0)) {
          for (const m of segs) {
            if (!isAfter(m.lastId)) continue;
            if (beyond(m.firstId)) return out;
            for (const x of await open(m)) {
              if (!isAfter(x.id)) continue;
              if (beyond(x.id)) return out;
              out.push(record(partition, x));
              cursor = x.id;
              if (out.length >= limit) return out;
            }
          }
          cursor = end;
        }
        const raw = xr as Array<[Buffer, Buffer[]]>;
        for (const [idBuf, flat] of raw) {
          const id = idBuf.toString("utf8");
          if (!isAfter(id)) continue;
          const fields = new Map<string, Buffer>();
          for (let i = 0; i + 1 < flat.length; i += 2) fields.set((flat[i] as Buffer).toString("utf8"), flat[i + 1] as Buffer);
          out.push({ partition, id, fields });
          cursor = id;
          if (out.length >= limit) return out;
        }
        if (raw.length < want) return out;
      }
      return out;
    },
  };
}

/**
 * Delete log segment blobs of `partition` that the log index does not reference and never can:
 * those starting at or below the index's last id (left by a crash between store and record, then
 * a rerun with other bounds). Blobs beyond the index's end may belong to a running archiver: kept.
 */
export async function collectLogOrphans(redis: RedisClient, blob: BlobStore, partition: number): Promise<number> {
  const segs = await logArchiveSegments(redis, partition);
  const last = segs[segs.length - 1];
  if (!last) return 0;
  const recorded = new Set(segs.map((m) => m.key));
  let deleted = 0;
  for (const b of await blob.list(`archive-log/p${partition}/`)) {
    if (recorded.has(b.key)) continue;
    const m = /\/(\d+)-(\d+)_\d+-\d+\.seg$/.exec(b.key);
    if (!m) continue;
    const firstId = `${BigInt(m[1] as string).toString()}-${BigInt(m[2] as string).toString()}`;
    if (compareOffsets(firstId, last.lastId) > 0) continue;
    await blob.delete(b.key);
    deleted += 1;
  }
  return deleted;
}
