import { z } from "zod";
import { fnv1a32 } from "../core/partition.js";

/**
 * An immutable string-keyed map that stays cheap to update as it grows: entries live in a fixed
 * number of buckets (plain objects, so the whole thing is JSON-safe for snapshots), and an update
 * copies one bucket and the bucket index instead of the whole map. A conversation remembers every
 * clientMessageId and a ledger every reservation of the day; copying a flat object on each event
 * would make a long-lived aggregate O(n²) to fold.
 *
 * The bucket count is part of the snapshot format: never change BUCKETS once snapshots exist (a
 * different count would look keys up in the wrong bucket).
 */
export type BucketMap<V> = Record<string, Record<string, V>>;

const BUCKETS = 64;

function bucketOf(key: string): string {
  return String(fnv1a32(key) % BUCKETS);
}

export function bmEmpty<V>(): BucketMap<V> {
  return {};
}

export function bmGet<V>(m: BucketMap<V>, key: string): V | undefined {
  const b = m[bucketOf(key)];
  return b !== undefined && Object.hasOwn(b, key) ? b[key] : undefined;
}

export function bmHas<V>(m: BucketMap<V>, key: string): boolean {
  const b = m[bucketOf(key)];
  return b !== undefined && Object.hasOwn(b, key);
}

export function bmSet<V>(m: BucketMap<V>, key: string, value: V): BucketMap<V> {
  const k = bucketOf(key);
  return { ...m, [k]: { ...m[k], [key]: value } };
}

export function bmDelete<V>(m: BucketMap<V>, key: string): BucketMap<V> {
  const k = bucketOf(key);
  const b = m[k];
  if (b === undefined || !Object.hasOwn(b, key)) return m;
  const { [key]: _gone, ...rest } = b;
  const out = { ...m };
  if (Object.keys(rest).length === 0) delete out[k];
  else out[k] = rest;
  return out;
}

export function* bmEntries<V>(m: BucketMap<V>): Generator<[string, V]> {
  for (const b of Object.values(m)) for (const [k, v] of Object.entries(b)) yield [k, v];
}

export function bmSize<V>(m: BucketMap<V>): number {
  let n = 0;
  for (const b of Object.values(m)) n += Object.keys(b).length;
  return n;
}

/**
 * The large maps are checked only for being plain objects when a snapshot is read back: they are
 * our own output, and validating every record would make every rehydration O(messages) in zod
 * alone, against the "< 5 ms from a snapshot" target.
 */
const isPlainObject = (v: unknown): v is Record<string, never> => typeof v === "object" && v !== null && !Array.isArray(v);
export const shallowMap = <V>() => z.custom<BucketMap<V>>(isPlainObject, "expected an object");
