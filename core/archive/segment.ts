import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants as zc, gunzip, gzip } from "node:zlib";
import { z } from "zod";
import { chainHash } from "../chain.js";
import { decodeEvent, decodeRaw, encode } from "../codec.js";
import { compareOffsets, isOffset } from "../envelope.js";
import { errorMessage } from "../errors.js";
import type { StreamRef } from "../keys.js";
import { ArchiveIntegrityError, segmentKey, type SegmentManifest } from "./manifest.js";

/**
 * The archive segment format (pure: bytes in, bytes out).
 *
 * Payload: msgpack `{v: 1, kind, id, entries: [{offset, e}, …]}` where `e` is the exact stored
 * record (the bytes the hash chain covers). The chain values are *not* stored: each is
 * sha256(previous ‖ e), so they follow from the manifest's `prevHash` and must be recomputed to
 * verify the segment anyway. Leaving them out makes segments about six times smaller — 32 random
 * bytes per event do not compress, while chat events do, very well (docs/archive.md has the
 * numbers) — and loses nothing: the recomputed chain must end at the manifest's `lastHash`.
 *
 * Compression is brotli at quality 5: on chat-shaped segments it stores about a third less than
 * gzip -6 at a similar speed, decompresses as fast, and higher qualities up to 9 gain nothing
 * (11 gains ~20 % at a hundred times the CPU). Segments are written once in the background and
 * kept for years, so size matters more than the last millisecond. gzip segments stay readable
 * (`codec` in the manifest).
 */
export interface ArchiveEntry {
  /** Entry id in the aggregate stream. */
  offset: string;
  /** The stored msgpack record (field `e`). */
  bytes: Uint8Array;
  /** Hex sha256 chain value after it (field `h`). */
  hash: string;
}

export interface DecodedEntry extends ArchiveEntry {
  version: number;
}

export type SegmentCodec = "br" | "gzip";

const brotli = promisify(brotliCompress);
const unbrotli = promisify(brotliDecompress);
const gz = promisify(gzip);
const ungz = promisify(gunzip);

const BROTLI_QUALITY = 5;

async function compress(codec: SegmentCodec, raw: Buffer): Promise<Buffer> {
  if (codec === "gzip") return gz(raw, { level: 6 });
  return brotli(raw, {
    params: {
      [zc.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [zc.BROTLI_PARAM_SIZE_HINT]: raw.length,
      [zc.BROTLI_PARAM_MODE]: zc.BROTLI_MODE_GENERIC,
    },
  });
}

async function decompress(codec: SegmentCodec, bytes: Buffer): Promise<Buffer> {
  return codec === "gzip" ? ungz(bytes) : unbrotli(bytes);
}

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/**
 * Walk `entries` as a continuation of the chain at `prevHash` with versions from `firstVersion`:
 * offsets must increase, every record must decode with the expected version, and, where an entry
 * carries a stored `hash`, it must equal the recomputed one. Returns each entry's version and chain
 * value. Throws ArchiveIntegrityError at the first break.
 */
export function chainRun(
  entries: ReadonlyArray<{ offset: string; bytes: Uint8Array; hash?: string }>,
  prevHash: string,
  firstVersion: number,
  where: string,
): { versions: number[]; hashes: string[] } {
  const versions: number[] = [];
  const hashes: string[] = [];
  let prev = prevHash;
  let prevOffset: string | undefined;
  entries.forEach((en, i) => {
    if (!isOffset(en.offset)) throw new ArchiveIntegrityError(`${where}: entry ${i} has no valid offset`, where);
    if (prevOffset !== undefined && compareOffsets(prevOffset, en.offset) >= 0) {
      throw new ArchiveIntegrityError(`${where}: offsets not increasing at ${en.offset}`, where);
    }
    let version: number;
    try {
      version = decodeEvent(en.bytes).version;
    } catch (e) {
      throw new ArchiveIntegrityError(`${where}: entry ${en.offset} does not decode: ${errorMessage(e)}`, where, e);
    }
    if (version !== firstVersion + i) {
      throw new ArchiveIntegrityError(`${where}: entry ${en.offset} has version ${version}, expected ${firstVersion + i}`, where);
    }
    const h = chainHash(prev, en.bytes);
    if (en.hash !== undefined && h !== en.hash) throw new ArchiveIntegrityError(`${where}: hash chain breaks at version ${version} (${en.offset})`, where);
    prev = h;
    prevOffset = en.offset;
    versions.push(version);
    hashes.push(h);
  });
  return { versions, hashes };
}

export interface EncodedSegment {
  bytes: Buffer;
  manifest: SegmentManifest;
}

/**
 * Build a segment from consecutive stream entries. Refuses (ArchiveIntegrityError) entries whose
 * chain or versions do not verify: a broken stream stays in Redis, where audit reports it, rather
 * than being sealed into the archive.
 */
export async function encodeSegment(
  ref: StreamRef,
  entries: ArchiveEntry[],
  anchor: { prevHash: string; firstVersion: number },
  opts: { codec?: SegmentCodec; createdAt?: string } = {},
): Promise<EncodedSegment> {
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (!first || !last) throw new RangeError("a segment needs at least one entry");
  const where = `${ref.kind}:${ref.id}`;
  chainRun(entries, anchor.prevHash, anchor.firstVersion, where);
  const lastVersion = anchor.firstVersion + entries.length - 1;
  const raw = encode({
    v: 1,
    kind: ref.kind,
    id: ref.id,
    entries: entries.map((e) => ({ offset: e.offset, e: Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength) })),
  });
  const codec = opts.codec ?? "br";
  const bytes = await compress(codec, raw);
  const manifest: SegmentManifest = {
    v: 1,
    key: segmentKey(ref, anchor.firstVersion, lastVersion),
    kind: ref.kind,
    id: ref.id,
    firstOffset: first.offset,
    lastOffset: last.offset,
    firstVersion: anchor.firstVersion,
    lastVersion,
    count: entries.length,
    prevHash: anchor.prevHash,
    lastHash: last.hash,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    rawSize: raw.length,
    codec,
    createdAt: opts.createdAt ?? new Date().toISOString(),
  };
  return { bytes, manifest };
}

const PayloadSchema = z.object({
  v: z.literal(1),
  kind: z.string(),
  id: z.string(),
  entries: z.array(z.object({ offset: z.string(), e: z.instanceof(Uint8Array) })).min(1),
});

/** Decompress and parse; shape errors are ArchiveIntegrityError naming `where`. */
async function openPayload(bytes: Buffer, codec: SegmentCodec, where: string): Promise<{ raw: Buffer; payload: z.infer<typeof PayloadSchema> }> {
  let raw: Buffer;
  try {
    raw = await decompress(codec, bytes);
  } catch (e) {
    throw new ArchiveIntegrityError(`segment ${where}: does not decompress`, where, e);
  }
  try {
    return { raw, payload: PayloadSchema.parse(decodeRaw(raw)) };
  } catch (e) {
    throw new ArchiveIntegrityError(`segment ${where}: malformed payload`, where, e);
  }
}

/**
 * Open a segment and prove it is the one the manifest describes: checksum of the stored bytes,
 * then the stream, count, offsets, versions and the chain from `prevHash` to `lastHash`.
 */
export async function decodeSegment(bytes: Uint8Array, manifest: SegmentManifest): Promise<DecodedEntry[]> {
  const where = manifest.key;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (sha256Hex(buf) !== manifest.sha256) throw new ArchiveIntegrityError(`segment ${where}: checksum mismatch`, where);
  const { payload } = await openPayload(buf, manifest.codec, where);
  if (payload.kind !== manifest.kind || payload.id !== manifest.id) {
    throw new ArchiveIntegrityError(`segment ${where}: belongs to ${payload.kind}:${payload.id}, not ${manifest.kind}:${manifest.id}`, where);
  }
  const entries = payload.entries.map((e) => ({ offset: e.offset, bytes: e.e }));
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (entries.length !== manifest.count || first?.offset !== manifest.firstOffset || last?.offset !== manifest.lastOffset) {
    throw new ArchiveIntegrityError(`segment ${where}: entries do not match the manifest's count and offsets`, where);
  }
  const { versions, hashes } = chainRun(entries, manifest.prevHash, manifest.firstVersion, `segment ${where}`);
  if (hashes[hashes.length - 1] !== manifest.lastHash) throw new ArchiveIntegrityError(`segment ${where}: last hash differs from its anchor`, where);
  return entries.map((e, i) => ({ ...e, hash: hashes[i] as string, version: versions[i] as number }));
}

/**
 * Rebuild a segment's manifest from its bytes alone, given where the chain stood before it — for
 * recovering a lost archive index. Throws ArchiveIntegrityError unless the segment belongs to
 * `ref` and continues the chain at `prevHash` with `firstVersion`.
 */
export async function inspectSegment(
  bytes: Uint8Array,
  at: { key: string; ref: StreamRef; prevHash: string; firstVersion: number; codec?: SegmentCodec; createdAt?: string },
): Promise<SegmentManifest> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const codec = at.codec ?? "br";
  const { raw, payload } = await openPayload(buf, codec, at.key);
  if (payload.kind !== at.ref.kind || payload.id !== at.ref.id) {
    throw new ArchiveIntegrityError(`segment ${at.key}: belongs to ${payload.kind}:${payload.id}`, at.key);
  }
  const entries = payload.entries.map((e) => ({ offset: e.offset, bytes: e.e }));
  const { hashes } = chainRun(entries, at.prevHash, at.firstVersion, `segment ${at.key}`);
  const lastVersion = at.firstVersion + entries.length - 1;
  if (segmentKey(at.ref, at.firstVersion, lastVersion) !== at.key) {
    throw new ArchiveIntegrityError(`segment ${at.key}: holds versions ${at.firstVersion}-${lastVersion}, not what its key says`, at.key);
  }
  return {
    v: 1,
    key: at.key,
    kind: at.ref.kind,
    id: at.ref.id,
    firstOffset: (entries[0] as { offset: string }).offset,
    lastOffset: (entries[entries.length - 1] as { offset: string }).offset,
    firstVersion: at.firstVersion,
    lastVersion,
    count: entries.length,
    prevHash: at.prevHash,
    lastHash: hashes[hashes.length - 1] as string,
    sha256: sha256Hex(buf),
    size: buf.length,
    rawSize: raw.length,
    codec,
    createdAt: at.createdAt ?? new Date().toISOString(),
  };
}
