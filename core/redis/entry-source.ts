import { Cluster } from "ioredis";
import type { AuditTarget, EntryRange, EntrySource, StoredEntry } from "../audit/entry.js";
import { GENESIS_HASH } from "../chain.js";
import { TributaryError } from "../errors.js";
import type { StreamHead } from "../event-store.js";
import { parseStreamKey, streamKeys, type StreamRef } from "../keys.js";
import type { RedisClient } from "./connection.js";
import { xrangePages } from "./stream-range.js";

/**
 * Redis side of audit and replay: raw entries of an aggregate stream (the exact stored bytes, for
 * the hash chain), the head record, and every aggregate stream key via SCAN — on every master when
 * the client is a Cluster, because SCAN only sees the keys of the node it runs on.
 */
export interface RedisEntrySource extends EntrySource {
  head(stream: StreamRef): Promise<StreamHead>;
  keyOf(stream: StreamRef): string;
  /** Every aggregate stream in Redis (optionally of one kind), each once. Order is SCAN's. */
  streams(kind?: string): AsyncIterable<AuditTarget>;
}

/** The client's ioredis keyPrefix (tests isolate themselves with one); SCAN patterns are not prefixed. */
function keyPrefixOf(redis: RedisClient): string {
  return redis.options.keyPrefix ?? "";
}

export function createRedisEntrySource(redis: RedisClient, partitions: number, pageSize = 500): RedisEntrySource {
  const prefix = keyPrefixOf(redis);

  async function* entries(stream: StreamRef, range: EntryRange = {}): AsyncGenerator<StoredEntry> {
    const key = streamKeys(stream, partitions).stream;
    const opts: { from?: string; to?: string; pageSize: number } = { pageSize };
    if (range.from !== undefined) opts.from = range.from;
    if (range.to !== undefined) opts.to = range.to;
    for await (const page of xrangePages(redis, key, opts)) {
      for (const en of page) {
        const bytes = en.fields.get("e");
        const hash = en.fields.get("h");
        // A missing field is itself a break; audit reports it as an undecodable / mismatching entry.
        yield { offset: en.id, bytes: bytes ?? Buffer.alloc(0), hash: hash?.toString("utf8") ?? "" };
      }
    }
  }

  async function head(stream: StreamRef): Promise<StreamHead> {
    const { meta } = streamKeys(stream, partitions);
    const [version, hash, last] = await redis.hmget(meta, "version", "hash", "last");
    return { version: version ? Number(version) : 0, hash: hash ?? GENESIS_HASH, lastOffset: last ?? null };
  }

  async function* streams(kind?: string): AsyncGenerator<AuditTarget> {
    const nodes = redis instanceof Cluster ? redis.nodes("master") : [redis];
    if (nodes.length === 0) throw new TributaryError("UNAVAILABLE", "no Redis master to scan");
    const pattern = `${prefix}{p*}:es:${kind ?? "*"}:*`;
    for (const node of nodes) {
      // SCAN may return a key more than once; remember what this node already gave.
      const seen = new Set<string>();
      let cursor = "0";
      do {
        const [next, found] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "stream");
        cursor = next;
        for (const full of found) {
          if (seen.has(full)) continue;
          seen.add(full);
          const key = full.startsWith(prefix) ? full.slice(prefix.length) : full;
          const ref = parseStreamKey(key);
          if (ref && streamKeys(ref, partitions).stream === key) yield { ref, key };
        }
      } while (cursor !== "0");
    }
  }

  return { entries, head, keyOf: (s) => streamKeys(s, partitions).stream, streams };
}
