import { TributaryError } from "../errors.js";
import type { AppendResult } from "../event-store.js";
import { encodeGroupCall, groupCall, groupFrameParts, parseGroupReplies, type GroupAppend, type GroupFrameParts, type GroupShared } from "./append-group.js";
import { isCluster, type RedisClient } from "./connection.js";
import { LuaScript } from "./lua-script.js";

/**
 * One group-commit script call (core/redis/scripts/append-group.lua) for a group of appends (of one
 * partition on a cluster, of any partitions on a single Redis).
 * EVALSHA straight on the client (falling back to EVAL on NOSCRIPT after a restart or failover):
 * cheaper in Node than ioredis's defineCommand wrapper, and KEYS still get the client's keyPrefix
 * and cluster slot routing.
 */
export const APPEND_GROUP_SCRIPT = LuaScript.file("append-group.lua");

const isNoScript = (e: unknown): boolean => e instanceof Error && e.message.startsWith("NOSCRIPT");

export interface GroupCallOptions {
  durability: "local" | "wait-replica";
  replicaTimeoutMs: number;
}

/** The encoded constant parts of a store's calls, made on its first call (per key prefix). */
const frameParts = new WeakMap<GroupShared, GroupFrameParts>();

function partsFor(shared: GroupShared, keyPrefix: string): GroupFrameParts {
  let parts = frameParts.get(shared);
  if (parts === undefined || parts.keyPrefix !== keyPrefix) {
    parts = groupFrameParts(shared, keyPrefix);
    frameParts.set(shared, parts);
  }
  return parts;
}

export async function callAppendGroup(
  redis: RedisClient,
  shared: GroupShared,
  appends: GroupAppend[],
  o: GroupCallOptions,
): Promise<Array<AppendResult | Error>> {
  if (o.durability === "local" && !isCluster(redis)) {
    // The hot path: the call's arguments encoded straight into one frame (core/redis/resp-args.ts).
    const args = encodeGroupCall(partsFor(shared, redis.options.keyPrefix ?? ""), appends);
    return parseGroupReplies(appends, await APPEND_GROUP_SCRIPT.sendArgs(redis, args));
  }
  const { keys, args } = groupCall(shared, appends);
  if (o.durability === "local") return parseGroupReplies(appends, await APPEND_GROUP_SCRIPT.send(redis, keys, args));

  // wait-replica: WAIT in the same pipeline = the same connection (on a cluster, the slot's node), so
  // it covers this call's writes — and those of every append of the group.
  const once = async (byShaOnly: boolean): Promise<Array<[Error | null, unknown]>> => {
    const p = redis.pipeline();
    if (byShaOnly) p.evalsha(APPEND_GROUP_SCRIPT.sha, keys.length, ...keys, ...args);
    else p.eval(APPEND_GROUP_SCRIPT.source, keys.length, ...keys, ...args);
    p.wait(1, o.replicaTimeoutMs);
    return ((await p.exec()) ?? []) as Array<[Error | null, unknown]>;
  };
  let replies = await once(true);
  // NOSCRIPT ran nothing, so running the source is safe.
  if (isNoScript(replies[0]?.[0])) replies = await once(false);
  const [scriptErr, scriptReply] = replies[0] ?? [new Error("empty pipeline reply"), null];
  if (scriptErr) throw scriptErr;
  const outcomes = parseGroupReplies(appends, scriptReply);
  const [waitErr, acked] = replies[1] ?? [new Error("no WAIT reply"), null];
  if (!waitErr && Number(acked) >= 1) return outcomes;
  // Appended (or duplicate) but not acknowledged by a replica: the caller retries with the same
  // command id and gets the first result. Refusals (CONFLICT…) stay what they are.
  return outcomes.map((r, i) =>
    r instanceof Error
      ? r
      : new TributaryError("UNAVAILABLE", `append to ${appends[i]?.stream} not acknowledged by a replica within ${o.replicaTimeoutMs} ms`, {
          details: { stream: appends[i]?.stream, toVersion: r.toVersion },
          retryAfter: 1,
          cause: waitErr ?? undefined,
        }),
  );
}
