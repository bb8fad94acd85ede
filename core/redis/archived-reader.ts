import type { EntryRange, EntrySource, StoredEntry } from "../audit/entry.js";
import { ArchiveIntegrityError, type SegmentManifest } from "../archive/manifest.js";
import { decodeSegment, type DecodedEntry } from "../archive/segment.js";
import type { BlobStore } from "../blob/blob-store.js";
import { decodeEvent } from "../codec.js";
import { compareOffsets, type RecordedEvent } from "../envelope.js";
import { TributaryError } from "../errors.js";
import type { ReadOptions } from "../event-store.js";
import { streamKeys, type StreamRef } from "../keys.js";
import { createArchiveIndex, parseSegments } from "./archive-index.js";
import type { RedisClient } from "./connection.js";
import { checkReadOptions, rangeStart } from "./stream-range.js";

/**
 * Reads a stream's events across the archive and Redis, in order, without gaps or duplicates
 * (I6) — the seam replay, SSE resume, rehydration, rebuilds and audit use.
 *
 * Each page starts with one MULTI that reads the archive index and XRANGEs the stream in the same
 * instant (both keys share the `{pN}` tag, so this also works on a Cluster). The archiver keeps
 * "every entry after the index's last offset is still in Redis", so within that snapshot the
 * archived segments up to the index's end followed by the Redis entries after it are the complete
 * history; entries both archived and not yet trimmed are taken from the archive only. Reading the
 * index and the stream separately would race with a concurrent archive + trim and could skip
 * events.
 */
export interface ArchivedEventReader {
  /** Events after `from` (exclusive; "0"/absent = the beginning) up to `to` (inclusive), at most `limit`. */
  read(ref: StreamRef, opts?: ReadOptions): Promise<RecordedEvent[]>;
  /** The same as a lazy iteration over a long stream, `pageSize` events per round trip [500]. */
  events(ref: StreamRef, opts?: { from?: string; to?: string; pageSize?: number }): AsyncGenerator<RecordedEvent>;
  /** Raw stored entries (exact bytes and chain values), archive + Redis: an EntrySource for audit. */
  readEntries(ref: StreamRef, opts?: ReadOptions): Promise<StoredEntry[]>;
  entries(ref: StreamRef, range?: EntryRange): AsyncGenerator<StoredEntry>;
  /** Only what the archive holds (an EntrySource for `history()`'s archive side). */
  archiveEntries(ref: StreamRef, range?: EntryRange): AsyncGenerator<StoredEntry>;
  /** The stream's segment manifests, oldest first. */
  segments(ref: StreamRef): Promise<SegmentManifest[]>;
}

export interface ArchivedReaderOptions {
  /** Decoded segments kept in memory [16]: resumes page through one segment many times. */
  cacheSegments?: number;
  /** Redis entries per internal round trip [1000]. */
  pageSize?: number;
}

export function createArchivedEventReader(
  redis: RedisClient,
  blob: BlobStore,
  partitions: number,
  opts: ArchivedReaderOptions = {},
): ArchivedEventReader & EntrySource {
  const index = createArchiveIndex(redis, partitions);
  const cacheSize = opts.cacheSegments ?? 16;
  const page = opts.pageSize ?? 1000;
  const cache = new Map<string, DecodedEntry[]>();

  async function openSegment(m: SegmentManifest): Promise<DecodedEntry[]> {
    const ck = `${m.key}#${m.sha256}`;
    const hit = cache.get(ck);
    if (hit) {
      cache.delete(ck);
      cache.set(ck, hit);
      return hit;
    }
    const bytes = await blob.get(m.key);
    if (bytes === null) throw new ArchiveIntegrityError(`segment ${m.key} is missing from the blob store`, m.key);
    const entries = await decodeSegment(bytes, m);
    if (cacheSize > 0) {
      cache.set(ck, entries);
      if (cache.size > cacheSize) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
    }
    return entries;
  }

  const isStart = (o: string | undefined): boolean => o === undefined || o === "0" || o === "0-0";

  async function readEntries(ref: StreamRef, ro: ReadOptions = {}): Promise<StoredEntry[]> {
    checkReadOptions(ro);
    const { stream } = streamKeys(ref, partitions);
    const idxKey = index.key(ref);
    const limit = ro.limit ?? Number.POSITIVE_INFINITY;
    const to = ro.to;
    let cursor: string | undefined = isStart(ro.from) ? undefined : ro.from;
    const out: StoredEntry[] = [];
    const after = (o: string) => cursor === undefined || compareOffsets(o, cursor) > 0;
    const beyondTo = (o: string) => to !== undefined && compareOffsets(o, to) > 0;
    if (to !== undefined && cursor !== undefined && compareOffsets(cursor, to) >= 0) return out;

    while (out.length < limit) {
      const want = Math.min(limit - out.length, page);
      const replies = await redis
        .multi()
        .zrange(idxKey, "0", "-1")
        .xrangeBuffer(stream, rangeStart(cursor), to ?? "+", "COUNT", want)
        .exec();
      if (!replies) throw new TributaryError("UNAVAILABLE", `read of ${stream} was aborted`);
      const [idxErr, idxReply] = replies[0] ?? [new Error("no index reply"), null];
      const [xErr, xReply] = replies[1] ?? [new Error("no XRANGE reply"), null];
      if (idxErr) throw idxErr;
      if (xErr) throw xErr;
      const manifests = parseSegments(idxReply as string[], idxKey);
      const archivedEnd = manifests[manifests.length - 1]?.lastOffset;

      // 1. The archived part of the range, segment by segment.
      if (archivedEnd !== undefined && (cursor === undefined || compareOffsets(cursor, archivedEnd) < 0)) {
        for (const m of manifests) {
          if (!after(m.lastOffset)) continue;
          if (beyondTo(m.firstOffset)) return out;
          for (const e of await openSegment(m)) {
            if (!after(e.offset)) continue;
            if (beyondTo(e.offset)) return out;
            out.push({ offset: e.offset, bytes: e.bytes, hash: e.hash });
            cursor = e.offset;
            if (out.length >= limit) return out;
          }
        }
        cursor = archivedEnd;
      }

      // 2. Redis after the archive's end, from the same snapshot. Where Redis takes over from the
      // archive (or from the beginning of the stream), the first event's version is known: check
      // it, so a lost index or an over-eager trim is an error instead of a silent gap (I6).
      const lastSeg = manifests[manifests.length - 1];
      let expectVersion: number | undefined;
      if (cursor === undefined && !lastSeg) expectVersion = 1;
      else if (lastSeg && cursor !== undefined && compareOffsets(cursor, lastSeg.lastOffset) === 0) expectVersion = lastSeg.lastVersion + 1;
      const raw = xReply as Array<[Buffer, Buffer[]]>;
      for (const [idBuf, flat] of raw) {
        const id = idBuf.toString("utf8");
        if (!after(id)) continue; // archived, not yet trimmed: already taken from the archive
        let e: Buffer | undefined;
        let h: Buffer | undefined;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const name = (flat[i] as Buffer).toString("utf8");
          if (name === "e") e = flat[i + 1];
          else if (name === "h") h = flat[i + 1];
        }
        if (expectVersion !== undefined) {
          const version = e ? decodeEvent(e).version : undefined;
          if (version !== expectVersion) {
            throw new ArchiveIntegrityError(
              `${stream}: history has a gap: expected version ${expectVersion} at ${id}, found ${version ?? "no event"} (archive index ${idxKey} missing or Redis trimmed past it?)`,
            );
          }
          expectVersion = undefined;
        }
        out.push({ offset: id, bytes: e ?? Buffer.alloc(0), hash: h?.toString("utf8") ?? "" });
        cursor = id;
        if (out.length >= limit) return out;
      }
      // Fewer than asked: the stream (as of the snapshot) ends here.
      if (raw.length < want) return out;
    }
    return out;
  }

  function toRecorded(ref: StreamRef, en: StoredEntry): RecordedEvent {
    if (en.bytes.length === 0 || en.hash === "") throw new TributaryError("INTERNAL", `entry ${en.offset} of ${ref.kind}:${ref.id} lacks its e/h fields`, { permanent: true });
    const rec = decodeEvent(en.bytes);
    const out: RecordedEvent = { stream: ref, offset: en.offset, version: rec.version, type: rec.type, at: rec.at, data: rec.data, hash: en.hash };
    if (rec.meta !== undefined) out.meta = rec.meta;
    return out;
  }

  async function read(ref: StreamRef, ro: ReadOptions = {}): Promise<RecordedEvent[]> {
    return (await readEntries(ref, ro)).map((en) => toRecorded(ref, en));
  }

  async function* entries(ref: StreamRef, range: EntryRange & { pageSize?: number } = {}): AsyncGenerator<StoredEntry> {
    const size = range.pageSize ?? 500;
    let from = range.from;
    for (;;) {
      const batch = await readEntries(ref, { ...(from === undefined ? {} : { from }), ...(range.to === undefined ? {} : { to: range.to }), limit: size });
      yield* batch;
      if (batch.length < size) return;
      from = batch[batch.length - 1]?.offset;
    }
  }

  async function* events(ref: StreamRef, o: { from?: string; to?: string; pageSize?: number } = {}): AsyncGenerator<RecordedEvent> {
    for await (const en of entries(ref, o)) yield toRecorded(ref, en);
  }

  async function* archiveEntries(ref: StreamRef, range: EntryRange = {}): AsyncGenerator<StoredEntry> {
    const from = isStart(range.from) ? undefined : range.from;
    for (const m of await index.segments(ref)) {
      if (from !== undefined && compareOffsets(m.lastOffset, from) <= 0) continue;
      if (range.to !== undefined && compareOffsets(m.firstOffset, range.to) > 0) return;
      for (const e of await openSegment(m)) {
        if (from !== undefined && compareOffsets(e.offset, from) <= 0) continue;
        if (range.to !== undefined && compareOffsets(e.offset, range.to) > 0) return;
        yield { offset: e.offset, bytes: e.bytes, hash: e.hash };
      }
    }
  }

  return { read, events, readEntries, entries, archiveEntries, segments: (ref) => index.segments(ref) };
}
