import { z } from "zod";

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

/**
 * FNV-1a (the high 32 bits, as core/partition.ts's fnv1a32) and a second, independent 32-bit hash
 * (MurmurHash3's mixing, the low 21 bits), in one pass over the key: every new message hashes three
 * keys and looks one up, on the hottest command.
 */
export function fingerprint(key: string): number {
  let f = 0x811c9dc5;
  let m = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    f = Math.imul(f ^ c, 0x01000193);
    m = Math.imul(m ^ c, 0xcc9e2d51);
    m = (m << 15) | (m >>> 17);
  }
  m ^= m >>> 16;
  m = Math.imul(m, 0x85ebca6b);
  m ^= m >>> 13;
  return (f >>> 0) * 2 ** 21 + ((m >>> 0) & 0x1fffff);
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
