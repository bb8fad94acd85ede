import { randomUUID } from "node:crypto";
import { decodeRaw, encode } from "../../core/codec.js";
import type { Logger } from "../../core/logger.js";
import { duplicateRedis, type RedisClient } from "../../core/redis/connection.js";
import type { CommandResult } from "./command.js";
import { TickBatch } from "./tick-batch.js";

/**
 * Command decisions travel back to the edge node that asked, on a reply stream of its own
 * (`tributary:replies:<node>`): a stream rather than Pub/Sub so a reply written while the reader
 * reconnects is not lost, and one blocking reader per node rather than one per request.
 * The stream expires when the node is gone.
 */
const REPLY_TTL_SECONDS = 3600;
const REPLY_MAXLEN = 10_000;

export function replyStreamKey(node: string): string {
  return `tributary:replies:${node}`;
}

/** When each reply stream's TTL was last pushed out: once a minute is plenty for a one-hour TTL. */
const expiresSet = new Map<string, number>();

/**
 * Decisions for the same reply stream made in the same tick (the commands of one consumer batch)
 * travel as ONE entry carrying several `id`/`r` pairs: one XADD instead of one per decision. The
 * listener reads every pair of an entry (and so still reads entries of one pair).
 */
const batches = new WeakMap<RedisClient, TickBatch<string, [string, Buffer]>>();

function replyBatch(redis: RedisClient): TickBatch<string, [string, Buffer]> {
  let b = batches.get(redis);
  if (!b) {
    b = new TickBatch((replyTo, replies) => {
      const fields: Array<string | Buffer> = [];
      for (const [id, r] of replies) fields.push("id", id, "r", r);
      const added = redis.xadd(replyTo, "MAXLEN", "~", String(REPLY_MAXLEN), "*", ...fields);
      const now = Date.now();
      if ((expiresSet.get(replyTo) ?? 0) >= now - 60_000) return added;
      expiresSet.set(replyTo, now);
      if (expiresSet.size > 10_000) expiresSet.clear();
      return Promise.all([added, redis.expire(replyTo, REPLY_TTL_SECONDS)]);
    }, 64);
    batches.set(redis, b);
  }
  return b;
}

/** Worker side: deliver a decision; resolves once the reply stream holds it. */
export async function sendReply(redis: RedisClient, replyTo: string, commandId: string, result: CommandResult): Promise<void> {
  await replyBatch(redis).add(replyTo, [commandId, encode(result)]);
}

interface Waiter {
  resolve: (r: CommandResult | undefined) => void;
  timer: NodeJS.Timeout;
}

/** Edge side: one reader for the node's reply stream; `wait(commandId, ms)` resolves on the decision or undefined on time-out. */
export class ReplyListener {
  readonly key: string;
  private readonly reader: RedisClient;
  private readonly waiters = new Map<string, Waiter>();
  private running = false;
  private loop: Promise<void> | undefined;
  // The node id is fresh per process, so the stream starts empty: read from the beginning.
  private lastId = "0-0";

  constructor(
    redis: RedisClient,
    private readonly log?: Logger,
    node: string = randomUUID(),
  ) {
    this.key = replyStreamKey(node);
    this.reader = duplicateRedis(redis);
    this.reader.on("error", () => undefined);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Register before sending the command, so a fast reply is never missed. */
  wait(commandId: string, timeoutMs: number): Promise<CommandResult | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(commandId);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(commandId, { resolve, timer });
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const res = (await this.reader.xreadBuffer("COUNT", 500, "BLOCK", 1000, "STREAMS", this.key, this.lastId)) as
          | Array<[Buffer, Array<[Buffer, Buffer[]]>]>
          | null;
        if (!res) continue;
        for (const [, entries] of res) {
          for (const [id, fields] of entries) {
            this.lastId = id.toString();
            this.dispatch(fields);
          }
        }
      } catch (e) {
        if (!this.running) break;
        this.log?.warn({ err: e }, "reply listener read failed; retrying");
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** An entry carries one or more `id`, `r` pairs (sendReply batches the decisions of a tick). */
  private dispatch(fields: Buffer[]): void {
    let commandId: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]?.toString();
      if (name === "id") commandId = fields[i + 1]?.toString();
      else if (name === "r" && commandId !== undefined) {
        this.deliver(commandId, fields[i + 1]);
        commandId = undefined;
      }
    }
  }

  private deliver(commandId: string, raw: Buffer | undefined): void {
    if (!raw) return;
    const w = this.waiters.get(commandId);
    if (!w) return;
    this.waiters.delete(commandId);
    clearTimeout(w.timer);
    try {
      w.resolve(decodeRaw(raw) as CommandResult);
    } catch {
      w.resolve(undefined);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.waiters.clear();
    this.reader.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
