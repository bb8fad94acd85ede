import { ArchiveIntegrityError, parseSegmentKey, streamArchivePrefix, type SegmentManifest } from "../archive/manifest.js";
import { inspectSegment, type SegmentCodec } from "../archive/segment.js";
import type { BlobStore } from "../blob/blob-store.js";
import { GENESIS_HASH, chainHash } from "../chain.js";
import { errorMessage } from "../errors.js";
import { streamKeys, type StreamRef } from "../keys.js";
import { createArchiveIndex } from "./archive-index.js";
import type { RedisClient } from "./connection.js";

/**
 * Rebuild lost archive index entries from the blob store (disaster recovery: Redis restored without
 * the `{pN}:archive:*` keys, or an operator deleted one). Segments carry their events, and a
 * segment's `prevHash` is the previous one's `lastHash` (genesis for the first), so the index is
 * re-derived from the index's current end by chaining segments whose keys start where the previous
 * one ended; of the paths through overlapping leftovers of interrupted runs, the one reaching
 * furthest wins.
 *
 * Segments store no chain values, so a forged segment chains as well as an honest one from a
 * given start; what authenticates the recovered prefix is Redis: the first event Redis holds after
 * it must chain from its last hash, or, when Redis holds nothing after it, the stream's head (meta)
 * must be exactly its end. Nothing is recorded for a stream that fails this — otherwise the next
 * archive pass would trim Redis up to an index entry that Redis contradicts.
 */
export interface RecoveryReport {
  streams: number;
  /** Segments added to the index. */
  recorded: number;
  /** Streams whose recovery stopped at a segment Redis contradicts. */
  conflicts: Array<{ stream: string; error: string }>;
}

export async function recoverArchiveIndex(redis: RedisClient, blob: BlobStore, partitions: number, only?: StreamRef): Promise<RecoveryReport> {
  const index = createArchiveIndex(redis, partitions);
  const byStream = new Map<string, { ref: StreamRef; segs: Array<{ key: string; firstVersion: number; lastVersion: number }> }>();
  for (const b of await blob.list(only ? streamArchivePrefix(only) : "archive/")) {
    const parsed = parseSegmentKey(b.key);
    if (!parsed) continue;
    const id = `${parsed.ref.kind}\u0000${parsed.ref.id}`;
    const entry = byStream.get(id) ?? { ref: parsed.ref, segs: [] };
    entry.segs.push({ key: b.key, firstVersion: parsed.firstVersion, lastVersion: parsed.lastVersion });
    byStream.set(id, entry);
  }
  const report: RecoveryReport = { streams: 0, recorded: 0, conflicts: [] };
  for (const { ref, segs } of byStream.values()) {
    report.streams += 1;
    const { stream } = streamKeys(ref, partitions);
    const head = await index.head(ref);
    const next = (head?.lastVersion ?? 0) + 1;
    const prev = head?.lastHash ?? GENESIS_HASH;
    // Interrupted runs can leave overlapping segments with other bounds (orphans); the index must
    // follow one path of segments, each starting where the previous ended. Search them all
    // (there are few) and keep the path that reaches furthest.
    segs.sort((a, b) => a.firstVersion - b.firstVersion || b.lastVersion - a.lastVersion);
    const reach = new Map<number, { hash: string; via: SegmentManifest[] }>([[next, { hash: prev, via: [] }]]);
    for (const seg of segs) {
      const from = reach.get(seg.firstVersion);
      if (!from) continue;
      const bytes = await blob.get(seg.key);
      if (!bytes) continue;
      let m: SegmentManifest | undefined;
      for (const codec of ["br", "gzip"] as SegmentCodec[]) {
        try {
          m = await inspectSegment(bytes, { key: seg.key, ref, prevHash: from.hash, firstVersion: seg.firstVersion, codec });
          break;
        } catch (e) {
          if (!(e instanceof ArchiveIntegrityError)) throw e;
        }
      }
      if (!m || reach.has(m.lastVersion + 1)) continue;
      reach.set(m.lastVersion + 1, { hash: m.lastHash, via: [...from.via, m] });
    }
    const furthest = Math.max(...reach.keys());
    const found = reach.get(furthest)?.via ?? [];
    const last = found[found.length - 1];
    if (!last) continue;
    // Segments carry no hashes of their own, so the recovered chain is authenticated by what
    // Redis still holds: the event right after it must chain from its last hash, or, when Redis
    // has nothing after it, the stream's head (meta) must be exactly its end.
    const conflict = await checkAgainstRedis(redis, stream, streamKeys(ref, partitions).meta, last);
    if (conflict) {
      report.conflicts.push({ stream, error: conflict });
      continue;
    }
    for (const m of found) {
      try {
        await index.record(ref, m);
        report.recorded += 1;
      } catch (e) {
        report.conflicts.push({ stream, error: errorMessage(e) });
        break;
      }
    }
  }
  return report;
}

async function checkAgainstRedis(redis: RedisClient, stream: string, meta: string, last: SegmentManifest): Promise<string | undefined> {
  const after = await redis.xrangeBuffer(stream, `(${last.lastOffset}`, "+", "COUNT", 1);
  const first = after[0];
  if (first) {
    const flat = first[1];
    const field = (name: string): Buffer | undefined => {
      for (let i = 0; i + 1 < flat.length; i += 2) if ((flat[i] as Buffer).toString("utf8") === name) return flat[i + 1];
      return undefined;
    };
    const e = field("e");
    const h = field("h")?.toString("utf8");
    if (!e || h !== chainHash(last.lastHash, e)) return `the archive ends at hash ${last.lastHash}, which the next event in Redis (${first[0].toString("utf8")}) does not continue`;
    return undefined;
  }
  const [version, hash] = await redis.hmget(meta, "version", "hash");
  if (version === null) return undefined; // no head to compare with (the stream's meta is gone too)
  if (Number(version) !== last.lastVersion) return `the archive ends at version ${last.lastVersion}, the stream's head is at ${version}, and Redis holds nothing in between`;
  if (hash !== last.lastHash) return `the archive ends at hash ${last.lastHash}, the stream's head hash is ${hash}`;
  return undefined;
}
