import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisClient } from "./connection.js";

/**
 * A Lua script kept in its own file (STYLE §6), run by EVALSHA with a fallback to EVAL on
 * NOSCRIPT (after a restart or failover the script cache is empty). KEYS go through ioredis's key
 * handling, so a client `keyPrefix` and Cluster slot routing apply to them as to any command.
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** Load `core/redis/scripts/<file>` (the folder every script of the Redis adapter lives in). */
  static file(file: string): LuaScript {
    return new LuaScript(file, readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8"));
  }

  async run(redis: RedisClient, keys: string[], args: Array<string | Buffer | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
