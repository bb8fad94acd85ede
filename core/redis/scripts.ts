import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import { TributaryError, VersionConflictError } from "../errors.js";
import type { AppendResult } from "../event-store.js";
import type { RedisClient } from "./connection.js";

/**
 * Loader for the Lua scripts in `scripts/` (one file per script, named `<name>-<numKeys>.lua`, with a
 * header listing KEYS, ARGV and the return codes), and the one place where their return codes
 * become typed results or errors.
 *
 * Scripts are registered with ioredis's defineCommand: it sends EVALSHA and falls back to EVAL on
 * NOSCRIPT, per connection, so a restarted or failed-over Redis needs no explicit SCRIPT LOAD.
 */
const scriptDir = new URL("./scripts/", import.meta.url);
const load = (file: string): string => readFileSync(new URL(file, scriptDir), "utf8");

export const APPEND_LUA = load("append-5.lua");
const APPEND_COMMAND = "tributaryAppend";

type ScriptArg = string | number | Buffer;
type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

function defined(target: RedisClient | ChainableCommander, name: string): ScriptFn {
  const fn: unknown = Reflect.get(target, name);
  if (typeof fn !== "function") throw new Error(`script command ${name} is not defined on this client`);
  return (...args) => (fn as (...a: ScriptArg[]) => Promise<unknown>).apply(target, args);
}

/** Register our scripts on a client (idempotent; pipelines created afterwards have them too). */
export function defineScripts(redis: RedisClient): void {
  if (typeof Reflect.get(redis, APPEND_COMMAND) === "function") return;
  redis.defineCommand(APPEND_COMMAND, { numberOfKeys: 5, lua: APPEND_LUA });
}

export interface AppendKeys {
  stream: string;
  meta: string;
  log: string;
  idem: string;
  /** `{pN}:idseq`: the partition's last entry id parts ("ms:k"), for ids unique across streams. */
  idseq: string;
}

export interface AppendArgs {
  expectedVersion: number;
  prevHash: string;
  idemTtlMs: number;
  /** Logical stream key for the log's `k` field. */
  streamName: string;
  /** PARTITIONS and this stream's partition: entry ids are `<ms>-<k·partitions + partition>`. */
  partitions: number;
  partition: number;
  /**
   * A duplicate rewrites its dedupe record (same value, same TTL), so that a WAIT after the call
   * covers the first append too: true under DURABILITY=wait-replica. Under local durability nothing
   * WAITs and a duplicate writes nothing.
   */
  rewriteDuplicate: boolean;
  /** Per event: stored bytes and chain hash after it. */
  events: Array<{ bytes: Buffer; hash: string }>;
}

function appendArgv(keys: AppendKeys, args: AppendArgs): ScriptArg[] {
  const argv: ScriptArg[] = [
    keys.stream,
    keys.meta,
    keys.log,
    keys.idem,
    keys.idseq,
    args.expectedVersion,
    args.prevHash,
    Math.max(0, Math.floor(args.idemTtlMs)),
    args.streamName,
    args.partitions,
    args.partition,
    args.events.length,
    args.rewriteDuplicate ? 1 : 0,
  ];
  for (const e of args.events) argv.push(e.bytes, e.hash);
  return argv;
}

/** Run the append script on a client. The raw reply goes through `parseAppendReply`. */
export function runAppend(redis: RedisClient, keys: AppendKeys, args: AppendArgs): Promise<unknown> {
  defineScripts(redis);
  return defined(redis, APPEND_COMMAND)(...appendArgv(keys, args));
}

/** Queue the append script on a pipeline (used to WAIT on the same connection). */
export function queueAppend(pipeline: ChainableCommander, keys: AppendKeys, args: AppendArgs): void {
  void defined(pipeline, APPEND_COMMAND)(...appendArgv(keys, args));
}

/**
 * The writer's previous hash is not the stored head although the version matched: its cached head
 * was stale (e.g. the stream was rebuilt). The store retries once from `actualHash`.
 */
export class StaleHeadError extends TributaryError {
  readonly actualVersion: number;
  readonly actualHash: string;
  constructor(stream: string, actualVersion: number, actualHash: string) {
    super("CONFLICT", `chain head of ${stream} moved (version ${actualVersion})`, { details: { stream, actualVersion, actualHash } });
    this.name = "StaleHeadError";
    this.actualVersion = actualVersion;
    this.actualHash = actualHash;
  }
}

const asInt = (v: unknown): number => {
  const n = typeof v === "number" ? v : Number(String(v));
  if (!Number.isSafeInteger(n)) throw new TributaryError("INTERNAL", `append script returned a non-integer: ${String(v)}`);
  return n;
};
const asText = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v));

/** Return codes of append-5.lua → AppendResult, or a typed error. */
export function parseAppendReply(stream: string, expectedVersion: number, reply: unknown): AppendResult {
  if (!Array.isArray(reply) || reply.length === 0) throw new TributaryError("INTERNAL", `append script: unexpected reply for ${stream}`);
  const code = asInt(reply[0]);
  switch (code) {
    case 0:
    case 1:
      return {
        duplicate: code === 1,
        fromVersion: asInt(reply[1]),
        toVersion: asInt(reply[2]),
        hash: asText(reply[3]),
        offsets: reply.slice(4).map(asText),
      };
    case -1:
      throw new VersionConflictError(stream, expectedVersion, asInt(reply[1]));
    case -2:
      throw new StaleHeadError(stream, asInt(reply[1]), asText(reply[2]));
    case -3:
      throw new TributaryError("BAD_REQUEST", `append script rejected its arguments for ${stream}: ${asText(reply[1])}`);
    default:
      throw new TributaryError("INTERNAL", `append script: unknown return code ${code} for ${stream}`);
  }
}
