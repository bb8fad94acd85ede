import { z } from "zod";
import { fnv1a32 } from "../core/partition.js";

/**
 * An immutable, JSON-safe set of 53-bit fingerprints of strings: "was this key perhaps added?".
 * A miss is certain (the key was never added); a hit may be a collision, so a caller that needs
 * the truth looks the key up where it is stored in full (for a conversation: its event log).
 *
 * It is what lets a long conversation remember every id it has used without keeping every id:
 * 8 bytes per key in memory and ~17 in a snapshot, against ~300 for a full record. Keys are kept in
 * chunks so that an add copies one chunk (≤ CHUNK numbers) and the chunk list, never the whole set.
 *
 * 53 bits (the most a JSON number holds exactly), not 32: with 32, a conversation of 40,000
 * messages (120,000 keys) met a collision about every 12,000 messages (bench/conversation-state.ts
 * hit one), and each costs the runtime a read of the whole log; with 53, about one in 10⁹ messages.
 */
export type FingerprintSet = number[][];

const CHUNK = 256;

/** A second 32-bit hash, independent of FNV-1a (MurmurHash3's mixing), for the low 21 bits. */
function mix32(key: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0xcc9e2d51);
    h = (h << 15) | (h >>> 17);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export function fingerprint(key: string): number {
  return fnv1a32(key) * 2 ** 21 + (mix32(key) & 0x1fffff);
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
