import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants as zc } from "node:zlib";
import { z } from "zod";
import { decodeRaw, encode } from "../codec.js";
import { compareOffsets, isOffset } from "../envelope.js";
import { ArchiveIntegrityError } from "./manifest.js";
import { sha256Hex } from "./segment.js";

/**
 * Archive segments of a partition log `{pN}:log` (pure). The log is what projections consume and
 * rebuild from (I1), and it holds a copy of every event, so it must leave Redis too — but only
 * into the archive, never into nothing: `projections rebuild` then reads archive + Redis.
 *
 * Payload: msgpack `{v: 1, partition, entries: [[id, k, o, e, h], …]}` with `h` as 32 raw bytes.
 * Unlike aggregate segments the chain values are kept: a log interleaves many streams, so `h`
 * cannot be recomputed from the segment alone. brotli as for aggregate segments.
 */
export interface LogArchiveEntry {
  /** Entry id in the partition log. */
  id: string;
  /** Aggregate stream key (field `k`). */
  k: string;
  /** Entry id in the aggregate stream (field `o`). */
  o: string;
  /** Stored event bytes (field `e`). */
  e: Uint8Array;
  /** Hex chain value (field `h`). */
  h: string;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const offset = z.string().refine(isOffset, "expected a stream offset");

export const LogSegmentManifestSchema = z.object({
  v: z.literal(1),
  key: z.string().min(1),
  partition: z.number().int().min(0),
  firstId: offset,
  lastId: offset,
  count: z.number().int().min(1),
  sha256: hex64,
  size: z.number().int().min(0),
  rawSize: z.number().int().min(0),
  codec: z.literal("br"),
  createdAt: z.string(),
});
export type LogSegmentManifest = z.infer<typeof LogSegmentManifestSchema>;

export function parseLogManifest(text: string): LogSegmentManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ArchiveIntegrityError("log archive index entry is not JSON", undefined, e);
  }
  const r = LogSegmentManifestSchema.safeParse(raw);
  if (!r.success) throw new ArchiveIntegrityError(`log archive index entry is malformed: ${r.error.issues[0]?.message ?? "invalid"}`);
  return r.data;
}

const padId = (id: string): string => {
  const [ms = "0", seq = "0"] = id.split("-");
  return `${ms.padStart(15, "0")}-${seq.padStart(10, "0")}`;
};

export function logSegmentKey(partition: number, firstId: string, lastId: string): string {
  return `archive-log/p${partition}/${padId(firstId)}_${padId(lastId)}.seg`;
}

const brotli = promisify(brotliCompress);
const unbrotli = promisify(brotliDecompress);

const PayloadSchema = z.object({
  v: z.literal(1),
  partition: z.number(),
  entries: z.array(z.tuple([z.string(), z.string(), z.string(), z.instanceof(Uint8Array), z.instanceof(Uint8Array)])).min(1),
});

export async function encodeLogSegment(
  partition: number,
  entries: LogArchiveEntry[],
  opts: { createdAt?: string } = {},
): Promise<{ bytes: Buffer; manifest: LogSegmentManifest }> {
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (!first || !last) throw new RangeError("a segment needs at least one entry");
  for (let i = 1; i < entries.length; i++) {
    if (compareOffsets((entries[i - 1] as LogArchiveEntry).id, (entries[i] as LogArchiveEntry).id) >= 0) throw new RangeError("log entries must be in id order");
  }
  const raw = encode({
    v: 1,
    partition,
    entries: entries.map((x) => [x.id, x.k, x.o, Buffer.from(x.e.buffer, x.e.byteOffset, x.e.byteLength), Buffer.from(x.h, "hex")]),
  });
  const bytes = await brotli(raw, { params: { [zc.BROTLI_PARAM_QUALITY]: 5, [zc.BROTLI_PARAM_SIZE_HINT]: raw.length } });
  return {
    bytes,
    manifest: {
      v: 1,
      key: logSegmentKey(partition, first.id, last.id),
      partition,
      firstId: first.id,
      lastId: last.id,
      count: entries.length,
      sha256: sha256Hex(bytes),
      size: bytes.length,
      rawSize: raw.length,
      codec: "br",
      createdAt: opts.createdAt ?? new Date().toISOString(),
    },
  };
}

export async function decodeLogSegment(bytes: Uint8Array, m: LogSegmentManifest): Promise<LogArchiveEntry[]> {
  const where = m.key;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (sha256Hex(buf) !== m.sha256) throw new ArchiveIntegrityError(`log segment ${where}: checksum mismatch`, where);
  let payload: z.infer<typeof PayloadSchema>;
  try {
    payload = PayloadSchema.parse(decodeRaw(await unbrotli(buf)));
  } catch (e) {
    throw new ArchiveIntegrityError(`log segment ${where}: malformed`, where, e);
  }
  const entries = payload.entries.map(([id, k, o, e, h]) => ({ id, k, o, e, h: Buffer.from(h).toString("hex") }));
  if (payload.partition !== m.partition || entries.length !== m.count || entries[0]?.id !== m.firstId || entries[entries.length - 1]?.id !== m.lastId) {
    throw new ArchiveIntegrityError(`log segment ${where}: does not match its manifest`, where);
  }
  for (let i = 1; i < entries.length; i++) {
    if (compareOffsets((entries[i - 1] as LogArchiveEntry).id, (entries[i] as LogArchiveEntry).id) >= 0) {
      throw new ArchiveIntegrityError(`log segment ${where}: ids not increasing`, where);
    }
  }
  return entries;
}
