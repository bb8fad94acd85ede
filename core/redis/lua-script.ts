import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Command, type Redis } from "ioredis";
import { isCluster, type RedisClient } from "./connection.js";
import { FrameCommand, RespArgs } from "./resp-args.js";

/**
 * A Lua script kept in its own file (STYLE §6), run by EVALSHA with a fallback to EVAL on
 * NOSCRIPT (after a restart or failover the script cache is empty). KEYS go through ioredis's key
 * handling, so a client `keyPrefix` and Cluster slot routing apply to them as to any command.
 */
export class LuaScript {
  readonly sha: string;
  /** `EVALSHA <sha>` and `EVAL <source>` as RESP bulk strings, for `sendArgs`. */
  private readonly shaHead: Buffer;
  private evalHead: Buffer | undefined;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
    this.shaHead = Buffer.concat([RespArgs.bulk("evalsha"), RespArgs.bulk(this.sha)]);
  }

  /** Load `core/redis/scripts/<file>` (the folder every script of the Redis adapter lives in). */
  static file(file: string): LuaScript {
    return new LuaScript(file, readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8"));
  }

  /**
   * Like `run`, but on a single Redis the command is written at once instead of going through
   * ioredis auto-pipelining (which builds a Pipeline and defers to setImmediate per tick). For a
   * caller that already batches — group commit sends one call per tick — that machinery only costs
   * CPU and a hop of the event loop. On a cluster it is `run` (slot routing stays ioredis's).
   */
  async send(redis: RedisClient, keys: string[], args: Array<string | Buffer | number>): Promise<unknown> {
    if (isCluster(redis)) return this.run(redis, keys, args);
    // As the client's own evalsha: prefixed KEYS, replies decoded as UTF-8 strings.
    const opts = { keyPrefix: redis.options.keyPrefix, replyEncoding: "utf8" as const };
    try {
      return await redis.sendCommand(new Command("evalsha", [this.sha, keys.length, ...keys, ...args], opts));
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return await redis.sendCommand(new Command("eval", [this.source, keys.length, ...keys, ...args], opts));
    }
  }

  /**
   * `send` for arguments already encoded (`numkeys, KEYS…, ARGV…`, KEYS with the client's key
   * prefix), on a single Redis: the frame goes through the client's queue as one FrameCommand,
   * written at once. Replies are not decoded to strings: bulk strings come back as Buffers.
   */
  async sendArgs(redis: Redis, args: RespArgs): Promise<unknown> {
    try {
      return await redis.sendCommand(new FrameCommand("evalsha", args.frame(this.shaHead, 2)));
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      this.evalHead ??= Buffer.concat([RespArgs.bulk("eval"), RespArgs.bulk(this.source)]);
      return await redis.sendCommand(new FrameCommand("eval", args.frame(this.evalHead, 2)));
    }
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
