import { randomUUID } from "node:crypto";
import type { Envelope } from "../../core/envelope.js";
import type { EventStore } from "../../core/event-store.js";
import type { FanoutSink } from "../../edge/fanout/index.js";

/**
 * Helpers shared by the fan-out and SSE tests: appending conversation events through the real event
 * store, and recording sinks.
 */
export const newConversationId = (): string => `c-${randomUUID().replace(/-/g, "").slice(0, 12)}`;

/** Appends `n` delta events one append at a time (each append = one version), returns their offsets. */
export class Appender {
  private version = 0;
  readonly offsets: string[] = [];
  constructor(
    private readonly store: EventStore,
    readonly conversationId: string,
    private readonly payloadBytes = 0,
  ) {}

  /** First event, as the conversation actor writes it (the access check reads owner and tenant here). */
  async create(ownerId: string, tenantId: string): Promise<string> {
    const data = { title: "t", model: "sim", ownerId, tenantId, projectId: null };
    const r = await this.store.append({ kind: "conversation", id: this.conversationId }, 0, [{ type: "conversation.created", at: new Date().toISOString(), data }], randomUUID());
    this.version = r.toVersion;
    this.offsets.push(...r.offsets);
    return r.offsets[0] as string;
  }

  async append(n: number, batch = 1): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += batch) {
      const size = Math.min(batch, n - i);
      const events = Array.from({ length: size }, (_, j) => ({
        type: "assistant.delta",
        at: new Date().toISOString(),
        data: { messageId: "m1", index: this.version + j, text: `t${this.version + j}${"x".repeat(this.payloadBytes)}` },
      }));
      const r = await this.store.append({ kind: "conversation", id: this.conversationId }, this.version, events, randomUUID());
      this.version = r.toVersion;
      out.push(...r.offsets);
      this.offsets.push(...r.offsets);
    }
    return out;
  }
}

/** A listener sink that records what it got; `bound` = frames accepted before reporting "over bound". */
export class RecordingSink implements FanoutSink {
  readonly envs: Envelope[] = [];
  readonly frames: string[] = [];
  dropped = false;
  constructor(
    readonly encoder: string,
    private readonly bound = Number.POSITIVE_INFINITY,
  ) {}
  deliver(frame: string, env: Envelope): boolean {
    if (this.frames.length >= this.bound) return false;
    this.frames.push(frame);
    this.envs.push(env);
    return true;
  }
  onDrop(): void {
    this.dropped = true;
  }
  get offsets(): string[] {
    return this.envs.map((e) => e.offset);
  }
}

/**
 * An in-process stand-in for uWS topics (the real app.publish is exercised by the SSE/Socket.IO
 * e2e tests): `publish` hands a frame to every sink that joined the topic, in join order.
 */
export class Topics {
  private readonly subs = new Map<string, Set<TopicSink>>();
  publish = (topic: string, frame: string): void => {
    for (const s of this.subs.get(topic) ?? []) s.received(frame);
  };
  subscribe(topic: string, s: TopicSink): void {
    let set = this.subs.get(topic);
    if (!set) this.subs.set(topic, (set = new Set()));
    set.add(s);
  }
  unsubscribe(topic: string, s: TopicSink): void {
    this.subs.get(topic)?.delete(s);
  }
}

/** A "WebSocket" sink: catch-up frames via deliver, live frames via the topic it joins. */
export class TopicSink implements FanoutSink {
  readonly frames: string[] = [];
  joined: string | undefined;
  constructor(
    readonly encoder: string,
    private readonly topics: Topics,
  ) {}
  deliver(frame: string): boolean {
    this.frames.push(frame);
    return true;
  }
  join(topic: string): void {
    if (this.joined) throw new Error("joined twice");
    this.joined = topic;
    this.topics.subscribe(topic, this);
  }
  received(frame: string): void {
    this.frames.push(frame);
  }
  /** What a transport does after `detach()` (ws.unsubscribe): later publishes no longer reach it. */
  leave(): void {
    if (this.joined) this.topics.unsubscribe(this.joined, this);
  }
}

/** Test encoder: the offset is enough to check order and exactly-once. */
export const offsetEncoder = (env: Envelope): string => env.offset;
