import { z } from "zod";
import { isOffset } from "../envelope.js";
import { TributaryError } from "../errors.js";
import type { StreamRef } from "../keys.js";

/**
 * What the index knows of one archive segment, without opening it. The anchors (versions, offsets,
 * previous and last chain value) tie the segment into its stream's hash chain: a segment rewritten
 * in the blob store no longer matches the manifest kept in Redis, even if the rewrite recomputed
 * every hash inside it, and `sha256` catches any flipped byte before decompression.
 */
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 hex digits");
const offset = z.string().refine(isOffset, "expected a stream offset");

export const SegmentManifestSchema = z.object({
  v: z.literal(1),
  /** Blob store key of the segment. */
  key: z.string().min(1),
  kind: z.string().min(1),
  id: z.string().min(1),
  firstOffset: offset,
  lastOffset: offset,
  firstVersion: z.number().int().min(1),
  lastVersion: z.number().int().min(1),
  count: z.number().int().min(1),
  /** Chain value before the first event (GENESIS_HASH for version 1). */
  prevHash: hex64,
  /** Chain value after the last event. */
  lastHash: hex64,
  /** sha256 of the stored (compressed) bytes. */
  sha256: hex64,
  size: z.number().int().min(0),
  /** Bytes before compression. */
  rawSize: z.number().int().min(0),
  codec: z.enum(["br", "gzip"]),
  createdAt: z.string(),
});

export type SegmentManifest = z.infer<typeof SegmentManifestSchema>;

/** A segment failed its checksum or anchors, or the archive index is inconsistent: never retried. */
export class ArchiveIntegrityError extends TributaryError {
  readonly segment: string | undefined;
  constructor(message: string, segment?: string, cause?: unknown) {
    super("INTERNAL", message, { permanent: true, cause, details: segment === undefined ? undefined : { segment } });
    this.name = "ArchiveIntegrityError";
    this.segment = segment;
  }
}

export function parseManifest(text: string): SegmentManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ArchiveIntegrityError("archive index entry is not JSON", undefined, e);
  }
  const r = SegmentManifestSchema.safeParse(raw);
  if (!r.success) throw new ArchiveIntegrityError(`archive index entry is malformed: ${r.error.issues[0]?.message ?? "invalid"}`);
  return r.data;
}

const PAD = 12;

/**
 * Ids can hold any character; keys may not. Everything but [A-Za-z0-9_-] is %-escaped (UTF-8), so
 * the mapping is reversible and a segment never starts with "." (reserved by the file store).
 */
export function encodeKeySegment(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Where a stream's segments live; versions are zero-padded so listing order is version order. */
export function streamArchivePrefix(ref: StreamRef): string {
  return `archive/${encodeKeySegment(ref.kind)}/${encodeKeySegment(ref.id)}/`;
}

export function segmentKey(ref: StreamRef, firstVersion: number, lastVersion: number): string {
  const pad = (n: number) => String(n).padStart(PAD, "0");
  return `${streamArchivePrefix(ref)}${pad(firstVersion)}-${pad(lastVersion)}.seg`;
}

/** Inverse of encodeKeySegment; undefined when `s` is not one of its outputs. */
export function decodeKeySegment(s: string): string | undefined {
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(s)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i));
  }
  const text = Buffer.from(bytes).toString("utf8");
  return encodeKeySegment(text) === s ? text : undefined;
}

/** `archive/<kind>/<id>/<first>-<last>.seg` → its parts, or undefined for any other key. */
export function parseSegmentKey(key: string): { ref: StreamRef; firstVersion: number; lastVersion: number } | undefined {
  const m = /^archive\/([^/]+)\/([^/]+)\/(\d{12})-(\d{12})\.seg$/.exec(key);
  if (!m) return undefined;
  const kind = decodeKeySegment(m[1] as string);
  const id = decodeKeySegment(m[2] as string);
  if (kind === undefined || id === undefined) return undefined;
  return { ref: { kind: kind as StreamRef["kind"], id }, firstVersion: Number(m[3]), lastVersion: Number(m[4]) };
}
