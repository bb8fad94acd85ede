import { createHash } from "node:crypto";

/**
 * The per-stream hash chain (I2): hash_n = sha256(hash_{n-1} ‖ bytes_n), where bytes_n is the exact
 * msgpack record stored in the entry. Hashing the stored bytes (not a re-serialisation) means any
 * changed byte breaks the chain, and no canonical-JSON rules are needed across versions.
 * The writer computes the chain (Redis Lua only has SHA-1); the append script only checks that the
 * writer started from the stored head.
 */
export const GENESIS_HASH = "0".repeat(64);

export function chainHash(prevHash: string, bytes: Uint8Array): string {
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(bytes).digest("hex");
}
