import { channel } from "node:diagnostics_channel";
import { Redis } from "ioredis";
import { decodeEvent } from "../../core/codec.js";

/**
 * The read loop the baseline and ceiling servers share: one blocking XREAD over every conversation
 * stream some client follows, each entry decoded once into the CONTRACT §4 envelope JSON (the same
 * work any server delivering these events must do) and handed to `onEvent`. Keys are full Redis
 * key names (prefix included): this client deliberately has no ioredis keyPrefix.
 */
export interface FollowedEvent {
  conversationId: string;
  offset: string;
  json: string;
}

/** The ceiling's XREAD rounds, shaped as the fan-out's (edge/fanout/partition-reader.ts READ_CHANNEL). */
const readChannel = channel("tributary:bench-follower:read");

export class StreamFollower {
  private readonly redis: Redis;
  private readonly last = new Map<string, string>();
  private readonly ids = new Map<string, string>();
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    redisUrl: string,
    private readonly onEvents: (events: FollowedEvent[]) => void,
    private readonly blockMs = 200,
  ) {
    this.redis = new Redis(redisUrl, { connectionName: "bench-follower", maxRetriesPerRequest: 2 });
  }

  /** Start following `key` (the stream of `conversationId`) from its current end. */
  async follow(key: string, conversationId: string): Promise<void> {
    if (this.last.has(key)) return;
    const top = await this.redis.xrevrange(key, "+", "-", "COUNT", 1);
    if (this.last.has(key)) return;
    this.last.set(key, top[0]?.[0] ?? "0-0");
    this.ids.set(key, conversationId);
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const keys = [...this.last.keys()];
      let reply: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      const issuedAt = readChannel.hasSubscribers ? performance.now() : 0;
      try {
        reply = (await this.redis.xreadBuffer("COUNT", 1000, "BLOCK", this.blockMs, "STREAMS", ...keys, ...keys.map((k) => this.last.get(k) ?? "0-0"))) as typeof reply;
      } catch {
        if (!this.running) return;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (!reply) continue;
      const repliedAt = issuedAt > 0 ? performance.now() : 0;
      const out: FollowedEvent[] = [];
      for (const [keyBuf, entries] of reply) {
        const key = keyBuf.toString();
        const conversationId = this.ids.get(key) ?? key;
        for (const [idBuf, fields] of entries) {
          const offset = idBuf.toString();
          this.last.set(key, offset);
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i]?.toString() !== "e") continue;
            const rec = decodeEvent(fields[i + 1] as Buffer);
            out.push({
              conversationId,
              offset,
              json: JSON.stringify({ conversationId, offset, version: rec.version, type: rec.type, at: rec.at, data: rec.data }),
            });
          }
        }
      }
      if (out.length > 0) this.onEvents(out);
      if (issuedAt > 0 && readChannel.hasSubscribers) {
        const ids = reply.flatMap(([, entries]) => entries.map((e) => e[0].toString()));
        readChannel.publish({ issuedAt, repliedAt, publishedAt: performance.now(), ids });
      }
    }
  }

  async close(): Promise<void> {
    this.running = false;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
