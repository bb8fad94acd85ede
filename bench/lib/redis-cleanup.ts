import { Redis } from "ioredis";

/** Deletes every key under `prefix` (a bench's own namespace), in bounded SCAN batches. */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!/^bench:[0-9a-f]+:$/.test(prefix)) throw new Error(`refusing to delete keys outside a bench namespace: ${prefix}`);
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: "bench-cleanup" });
  let cursor = "0";
  let n = 0;
  try {
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) n += await r.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    r.disconnect();
  }
  return n;
}
