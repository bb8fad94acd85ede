import { z } from "zod";
import { fnv1a32 } from "../core/partition.js";

/**
 * An immutable, JSON-safe set of 32-bit fingerprints of strings: "was this key perhaps added?".
 * A miss is certain (the key was never added); a hit may be a collision, so a caller that needs
 * the truth looks the key up where it is stored in full (for a conversation: its event log).
 *
 * It is what lets a long conversation remember every id it has used without keeping every id:
 * 8 bytes per key in memory and ~11 in a snapshot, against ~300 for a full record. Keys are kept in
 * chunks so that an add copies one chunk (≤ CHUNK numbers) and the chunk list, never the whole set.
 */
export type FingerprintSet = number[][];

const CHUNK = 256;

export function fingerprint(key: string): number {
  return fnv1a32(key);
}

export function fpsEmpty(): FingerprintSet {
  return [];
}

export function fpsAdd(s: FingerprintSet, key: string): FingerprintSet {
  const f = fingerprint(key);
  const last = s[s.length - 1];
  if (last === undefined || last.length >= CHUNK) return [...s, [f]];
  return [...s.slice(0, -1), [...last, f]];
}

export function fpsMayHave(s: FingerprintSet, key: string): boolean {
  const f = fingerprint(key);
  for (const chunk of s) if (chunk.includes(f)) return true;
  return false;
}

export function fpsSize(s: FingerprintSet): number {
  let n = 0;
  for (const chunk of s) n += chunk.length;
  return n;
}

/**
 * Checked only for its shape when a snapshot is read back (our own output; validating every number
 * with zod would make rehydration O(messages) in zod alone, as for bucket-map.ts).
 */
const isChunks = (v: unknown): v is FingerprintSet => Array.isArray(v) && v.every((c) => Array.isArray(c));
export const fingerprintSet = () => z.custom<FingerprintSet>(isChunks, "expected an array of fingerprint chunks");
