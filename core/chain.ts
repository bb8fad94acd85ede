import { createHash, hash } from "node:crypto";

/**
 * The per-stream hash chain (I2): hash_n = sha256(hash_{n-1} ‖ bytes_n), where bytes_n is the exact
 * msgpack record stored in the entry. Hashing the stored bytes (not a re-serialisation) means any
 * changed byte breaks the chain, and no canonical-JSON rules are needed across versions.
 * The writer computes the chain (Redis Lua only has SHA-1); the append script only checks that the
 * writer started from the stored head.
 */
export const GENESIS_HASH = "0".repeat(64);

/**
 * The writer hashes every appended event, so this is on the append hot path: one-shot
 * `crypto.hash` over a reused scratch buffer (previous hash bytes, then the record) costs about
 * half of a `createHash` object with two updates. Same input bytes, same digest: `Buffer.write`
 * decodes hex exactly as `Buffer.from(…, "hex")` does (stopping at the first invalid pair).
 * Synchronous and single-threaded, so one scratch buffer serves every call.
 */
const SCRATCH = Buffer.allocUnsafe(8 * 1024);

export function chainHash(prevHash: string, bytes: Uint8Array): string {
  if (prevHash.length / 2 + bytes.length <= SCRATCH.length) {
    const n = SCRATCH.write(prevHash, 0, "hex");
    SCRATCH.set(bytes, n);
    return hash("sha256", SCRATCH.subarray(0, n + bytes.length), "hex");
  }
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(bytes).digest("hex");
}
