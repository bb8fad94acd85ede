import { TributaryError } from "../errors.js";

/**
 * One interface over the places big, immutable-ish bytes live: archive segments and actor
 * snapshots. S3 (any S3-compatible server) when S3_BUCKET is set, files under DATA_DIR/blobs
 * otherwise. Keys are `/`-separated paths; both backends list them in the same (byte) order, so a
 * caller that pads numbers in keys can rely on `list` order.
 */
export interface BlobInfo {
  key: string;
  size: number;
  /** S3 ETag (quotes stripped) or, for the file store, undefined. */
  etag?: string;
  /** User metadata given to `put` (lower-case keys). */
  meta: Record<string, string>;
  modifiedAt?: Date;
}

export interface BlobEntry {
  key: string;
  size: number;
}

export interface BlobGetOptions {
  /**
   * The caller expects a small object and waits for it on a latency-critical path (an actor
   * snapshot during rehydration). A store may then read it in a way that costs fewer event-loop
   * turns: the file store reads objects up to its `syncReadMaxBytes` synchronously (file-store.ts
   * explains the trade-off). The result is the same bytes either way.
   */
  small?: boolean;
}

export interface BlobStore {
  /** "s3" or "file": for logs and /readyz. */
  readonly kind: "s3" | "file";
  /** Where the store points (bucket or directory), for operators. */
  readonly location: string;
  /**
   * Write the whole object atomically: a reader sees the old bytes or the new ones, never a mix or
   * a prefix. Overwrites. `meta` keys must be lower-case `[a-z0-9-]`, values printable ASCII.
   */
  put(key: string, bytes: Uint8Array, meta?: Record<string, string>): Promise<{ etag?: string }>;
  /** The bytes, or null when there is no such key. */
  get(key: string, opts?: BlobGetOptions): Promise<Buffer | null>;
  head(key: string): Promise<BlobInfo | null>;
  /** Every key starting with `prefix` (a string prefix, not only a folder), in byte order. */
  list(prefix: string): Promise<BlobEntry[]>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Throws DependencyError("blob store", …) when the store cannot be used (readiness checks). */
  check(): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT_RE = /^[A-Za-z0-9_~=+,;@%()!'$&-][A-Za-z0-9_.~=+,;@%()!'$&-]*$/;

/**
 * Keys are relative paths of safe characters: no empty, `.` or `..` segments (the file store maps
 * keys to paths, so this is also the path-traversal guard) and no segment starting with `.`, which
 * the file store reserves for its temp and metadata folders.
 */
export function checkBlobKey(key: string): void {
  if (key.length === 0 || key.length > 1024) throw new TributaryError("BAD_REQUEST", `blob key must be 1..1024 characters`);
  for (const seg of key.split("/")) {
    if (!SEGMENT_RE.test(seg)) throw new TributaryError("BAD_REQUEST", `invalid blob key ${JSON.stringify(key)}`);
  }
}

/** A prefix may end in `/` or in the middle of a segment; otherwise the same characters as keys. */
export function checkBlobPrefix(prefix: string): void {
  if (prefix === "") return;
  const body = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  const segs = body.split("/");
  for (const seg of segs) {
    // The last segment may be a partial name; "" is only allowed as a lone empty prefix.
    if (!SEGMENT_RE.test(seg)) throw new TributaryError("BAD_REQUEST", `invalid blob prefix ${JSON.stringify(prefix)}`);
  }
}

const META_KEY_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const META_VALUE_RE = /^[\x20-\x7e]{0,1024}$/;

/** S3 lower-cases metadata names and allows only ASCII values; the file store enforces the same. */
export function checkBlobMeta(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!meta) return out;
  let total = 0;
  for (const [k, v] of Object.entries(meta)) {
    if (!META_KEY_RE.test(k)) throw new TributaryError("BAD_REQUEST", `invalid blob metadata name ${JSON.stringify(k)}`);
    if (typeof v !== "string" || !META_VALUE_RE.test(v)) throw new TributaryError("BAD_REQUEST", `invalid blob metadata value for ${k}`);
    total += k.length + v.length;
    out[k] = v;
  }
  // S3 limits user metadata to 2 KB in total.
  if (total > 2048) throw new TributaryError("BAD_REQUEST", "blob metadata exceeds 2 KB");
  return out;
}

/** Byte order of the UTF-8 encodings, which is S3's listing order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
