import { ArchiveIntegrityError, parseManifest, type SegmentManifest } from "../archive/manifest.js";
import { TributaryError } from "../errors.js";
import { tag, type StreamRef } from "../keys.js";
import { partitionOf } from "../partition.js";
import type { RedisClient } from "./connection.js";
import { LuaScript } from "./lua-script.js";

/**
 * Where each archive segment of a stream lives: a sorted set `{pN}:archive:<kind>:<id>` next to
 * the stream (same hash tag, so one MULTI reads index and stream atomically, also on a Cluster).
 * Score = the segment's last version, member = its manifest as JSON. Members are few (one per
 * segment of up to a thousand events), so readers load the whole set and search it in memory.
 *
 * Invariant the archiver keeps: every stream entry with an id above the last recorded segment's
 * `lastOffset` is still in Redis (trimming never goes past the index).
 */
export const archiveIndexKey = (partition: number, kind: string, id: string): string => `${tag(partition)}:archive:${kind}:${id}`;

const RECORD = LuaScript.file("archive-record-1.lua");

export type RecordOutcome = "recorded" | "exists";

export interface ArchiveIndex {
  key(ref: StreamRef): string;
  /** Every segment of the stream, oldest first. */
  segments(ref: StreamRef): Promise<SegmentManifest[]>;
  /** The newest segment, or null when nothing of the stream is archived. */
  head(ref: StreamRef): Promise<SegmentManifest | null>;
  /**
   * Record a segment that continues the archived prefix. "exists" when the same range is already
   * recorded; ArchiveIntegrityError when it would leave a gap or overlap.
   */
  record(ref: StreamRef, m: SegmentManifest): Promise<RecordOutcome>;
}

/** Parse ZRANGE members (ascending by last version) and check they form one contiguous run. */
export function parseSegments(members: string[], key: string): SegmentManifest[] {
  const out = members.map(parseManifest);
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1] as SegmentManifest;
    const b = out[i] as SegmentManifest;
    if (a.lastVersion + 1 !== b.firstVersion || a.lastHash !== b.prevHash) {
      throw new ArchiveIntegrityError(`archive index ${key} is not contiguous between versions ${a.lastVersion} and ${b.firstVersion}`, b.key);
    }
  }
  return out;
}

export function createArchiveIndex(redis: RedisClient, partitions: number): ArchiveIndex {
  const key = (ref: StreamRef) => archiveIndexKey(partitionOf(ref.id, partitions), ref.kind, ref.id);
  return {
    key,
    async segments(ref) {
      const k = key(ref);
      return parseSegments(await redis.zrange(k, "0", "-1"), k);
    },
    async head(ref) {
      const [last] = await redis.zrange(key(ref), "-1", "-1");
      return last === undefined ? null : parseManifest(last);
    },
    async record(ref, m) {
      if (m.kind !== ref.kind || m.id !== ref.id) throw new TributaryError("BAD_REQUEST", `manifest of ${m.kind}:${m.id} recorded for ${ref.kind}:${ref.id}`);
      try {
        const r = await RECORD.run(redis, [key(ref)], [JSON.stringify(m), m.firstVersion, m.lastVersion, m.prevHash]);
        return Number(r) === 1 ? "recorded" : "exists";
      } catch (e) {
        if (e instanceof Error && e.message.startsWith("ARCHIVE_GAP")) throw new ArchiveIntegrityError(`${key(ref)}: ${e.message}`, m.key, e);
        throw e;
      }
    },
  };
}
