import { TributaryError, VersionConflictError } from "../errors.js";
import type { AppendResult } from "../event-store.js";
import { RespArgs } from "./resp-args.js";
import { StaleHeadError } from "./scripts.js";

/**
 * The group-commit script's arguments and replies (core/redis/scripts/append-group.lua): pure, no
 * I/O. This is the one place where its return codes become results or typed errors.
 */

/** One append of a group: keys of its stream, what the writer expects, and the encoded events. */
export interface GroupAppend {
  /** The stream's partition (its `{pN}` tag). */
  partition: number;
  /** `{pN}:es:<kind>:<id>` (also the log's `k`, from its `{`). */
  stream: string;
  meta: string;
  /** `{pN}:idem:<kind>:<id>:<commandId>`. */
  idem: string;
  expectedVersion: number;
  /** The chain value the writer started from (hex). */
  prevHash: string;
  /** Its dedupe record's TTL in ms (0 = forever); absent = the call's (`GroupShared.idemTtlMs`). */
  idemTtlMs?: number;
  /** Per event: stored bytes and the chain hash after it (hex, as stored in `h`). */
  events: Array<{ bytes: Buffer; hash: string }>;
}

/** What every call shares: the deployment's settings and the per-partition keys (index = partition). */
export interface GroupShared {
  idemTtlMs: number;
  partitions: number;
  /**
   * Duplicates rewrite their dedupe records (same value, same TTL) so that a WAIT after the call
   * covers the first appends too: true under DURABILITY=wait-replica; absent or false, a duplicate
   * writes nothing. Sent as the call's trailing argument, only when true.
   */
  rewriteDuplicates?: boolean;
  /** `{pN}:log` and `{pN}:idseq` of every partition, by partition number. */
  logs: readonly string[];
  idseqs: readonly string[];
}

export type ScriptArg = string | number | Buffer;

/** An append's dedupe TTL as the script gets it: whole ms, never negative. */
const ttlOf = (callTtlMs: number, a: GroupAppend): number => Math.max(0, Math.floor(a.idemTtlMs ?? callTtlMs));

/**
 * KEYS and ARGV of one script call for `appends`, of any partitions (on a cluster the caller only
 * groups appends of one partition). Partitions are numbered 1..G in the order they first appear.
 */
export function groupCall(shared: GroupShared, appends: readonly GroupAppend[]): { keys: string[]; args: ScriptArg[] } {
  const partsOfCall: number[] = [];
  const gOf = new Map<number, number>();
  for (const a of appends) {
    if (!gOf.has(a.partition)) {
      partsOfCall.push(a.partition);
      gOf.set(a.partition, partsOfCall.length);
    }
  }
  const keys: string[] = [];
  const args: ScriptArg[] = [Math.max(0, Math.floor(shared.idemTtlMs)), shared.partitions, partsOfCall.length];
  for (const p of partsOfCall) {
    keys.push(shared.logs[p] as string, shared.idseqs[p] as string);
    args.push(p);
  }
  args.push(appends.length);
  for (const a of appends) {
    keys.push(a.stream, a.meta, a.idem);
    args.push(gOf.get(a.partition) as number, a.expectedVersion, a.prevHash, ttlOf(shared.idemTtlMs, a), a.events.length);
    for (const e of a.events) args.push(e.bytes, e.hash);
  }
  if (shared.rewriteDuplicates) args.push(1);
  return { keys, args };
}

/**
 * What every call of one store (and one client key prefix) sends alike, RESP-encoded once: the TTL,
 * P, and each partition's log and id-sequence keys with the prefix.
 */
export interface GroupFrameParts {
  keyPrefix: string;
  prefix: Buffer | undefined;
  ttl: Buffer;
  /** The call's TTL as a number (`ttl` is its RESP encoding). */
  ttlMs: number;
  partitions: Buffer;
  logs: Buffer[];
  idseqs: Buffer[];
  /** `GroupShared.rewriteDuplicates`: the call ends with the argument 1. */
  rewriteDuplicates: boolean;
  /** Scratch for `encodeGroupCall`: a partition's index in the call (0 = not yet in it). */
  gOf: Int32Array;
}

export function groupFrameParts(shared: GroupShared, keyPrefix = ""): GroupFrameParts {
  const prefixed = (k: string): Buffer => RespArgs.bulk(keyPrefix + k);
  return {
    keyPrefix,
    prefix: keyPrefix ? Buffer.from(keyPrefix, "utf8") : undefined,
    ttl: RespArgs.bulk(String(Math.max(0, Math.floor(shared.idemTtlMs)))),
    ttlMs: Math.max(0, Math.floor(shared.idemTtlMs)),
    partitions: RespArgs.bulk(String(shared.partitions)),
    logs: shared.logs.map(prefixed),
    idseqs: shared.idseqs.map(prefixed),
    rewriteDuplicates: shared.rewriteDuplicates === true,
    gOf: new Int32Array(shared.partitions),
  };
}

/**
 * `groupCall`'s `numkeys, KEYS…, ARGV…` (the arguments after the script's sha), encoded straight
 * into one buffer, KEYS with the client's key prefix: the same bytes ioredis would write for
 * `evalsha(sha, keys.length, ...keys, ...args)` (test/core/resp-args.unit.spec.ts), without the
 * argument arrays, the prefixed key strings and ioredis's per-argument encoding.
 */
export function encodeGroupCall(parts: GroupFrameParts, appends: readonly GroupAppend[]): RespArgs {
  const gOf = parts.gOf;
  const order: number[] = [];
  let size = 64;
  const pre = parts.prefix ? parts.prefix.length : 0;
  for (const a of appends) {
    if (gOf[a.partition] === 0) {
      order.push(a.partition);
      gOf[a.partition] = order.length;
    }
    size += a.stream.length + a.meta.length + a.idem.length + 3 * pre + a.prevHash.length + 96;
    for (const e of a.events) size += e.bytes.length + e.hash.length + 16;
  }
  for (const p of order) size += (parts.logs[p] as Buffer).length + (parts.idseqs[p] as Buffer).length + 16;
  const out = new RespArgs(size);
  try {
    out.int(2 * order.length + 3 * appends.length);
    for (const p of order) out.encoded(parts.logs[p] as Buffer).encoded(parts.idseqs[p] as Buffer);
    for (const a of appends) out.string(a.stream, parts.prefix).string(a.meta, parts.prefix).string(a.idem, parts.prefix);
    out.encoded(parts.ttl).encoded(parts.partitions).int(order.length);
    for (const p of order) out.int(p);
    out.int(appends.length);
    for (const a of appends) {
      out.int(gOf[a.partition] as number).int(a.expectedVersion).string(a.prevHash);
      // The call's own TTL is encoded once (the common case); another is printed for this append.
      const ttl = ttlOf(parts.ttlMs, a);
      if (ttl === parts.ttlMs) out.encoded(parts.ttl);
      else out.int(ttl);
      out.int(a.events.length);
      for (const e of a.events) out.bytes(e.bytes).string(e.hash);
    }
    if (parts.rewriteDuplicates) out.int(1);
  } finally {
    for (const p of order) gOf[p] = 0;
  }
  return out;
}

const asInt = (v: unknown): number => {
  const n = typeof v === "number" ? v : Number(String(v));
  if (!Number.isSafeInteger(n)) throw new TributaryError("INTERNAL", `append script returned a non-integer: ${String(v)}`);
  return n;
};
const asText = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v));

/** One append's reply → its AppendResult, or the typed error its caller gets. Never throws. */
export function parseGroupReply(append: GroupAppend, reply: unknown): AppendResult | Error {
  const stream = append.stream;
  if (!Array.isArray(reply) || reply.length === 0) return new TributaryError("INTERNAL", `append script: unexpected reply for ${stream}`);
  try {
    const code = asInt(reply[0]);
    switch (code) {
      case 0: {
        const n = append.events.length;
        if (reply.length !== n + 1) return new TributaryError("INTERNAL", `append script: ${reply.length - 1} offsets for ${n} events of ${stream}`);
        // The script appended exactly at expected+1..expected+n (it checked the version), and the
        // chain value after the last event is the writer's own: neither needs to travel back.
        const offsets = new Array<string>(n);
        for (let i = 0; i < n; i++) offsets[i] = asText(reply[i + 1]);
        return {
          duplicate: false,
          fromVersion: append.expectedVersion + 1,
          toVersion: append.expectedVersion + n,
          offsets,
          hash: (append.events[n - 1] as { hash: string }).hash,
        };
      }
      case 1:
        return {
          duplicate: true,
          fromVersion: asInt(reply[1]),
          toVersion: asInt(reply[2]),
          offsets: reply.slice(4).map(asText),
          hash: asText(reply[3]),
        };
      case -1:
        return new VersionConflictError(stream, append.expectedVersion, asInt(reply[1]));
      case -2:
        return new StaleHeadError(stream, asInt(reply[1]), asText(reply[2]));
      case -3:
        return new TributaryError("BAD_REQUEST", `append script rejected its arguments for ${stream}: ${asText(reply[1])}`);
      case -4:
        return new TributaryError("INTERNAL", `append to ${stream} refused by Redis: ${asText(reply[1])}`);
      default:
        return new TributaryError("INTERNAL", `append script: unknown return code ${code} for ${stream}`);
    }
  } catch (e) {
    return e instanceof Error ? e : new TributaryError("INTERNAL", String(e));
  }
}

/** The whole group's reply → one outcome per append (a malformed reply fails every append). */
export function parseGroupReplies(appends: readonly GroupAppend[], reply: unknown): Array<AppendResult | Error> {
  if (!Array.isArray(reply) || reply.length !== appends.length) {
    // A group-level refusal ({-3} before the appends) or a reply of the wrong shape.
    const why = Array.isArray(reply) && Array.isArray(reply[0]) && reply.length === 1 ? asText(reply[0][1]) : "unexpected reply";
    const err = new TributaryError("INTERNAL", `append group script: ${why} (${appends.length} appends)`);
    return appends.map(() => err);
  }
  return appends.map((a, i) => parseGroupReply(a, reply[i]));
}

/** Bytes a group append sends (for the group's byte cap): events, hashes and keys, roughly. */
export function appendWeight(a: GroupAppend): number {
  let n = a.stream.length + a.meta.length + a.idem.length + 96;
  for (const e of a.events) n += e.bytes.length + e.hash.length + 8;
  return n;
}
