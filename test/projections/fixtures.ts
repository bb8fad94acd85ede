import { encodeEvent } from "../../core/codec.js";
import { CURRENT_SCHEMA } from "../../core/envelope.js";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import type { LogRecord } from "../../projections/log-source.js";

/** An event as a test writes it: the store assigns version and offsets. */
export interface TestEvent {
  kind: "conversation" | "session" | "ledger";
  id: string;
  type: string;
  data: unknown;
  at: string;
}

/**
 * Builds partition-log entries in the real entry format (k, o, e = msgpack StoredEvent via the
 * production codec, h) without Redis, for projection specs. Versions count per aggregate, entry ids
 * increase per stream, exactly as the event store assigns them.
 */
export class LogBuilder {
  readonly entries: LogRecord[] = [];
  private readonly versions = new Map<string, number>();
  /** Shared by every builder of the process: entry ids keep increasing across tests on one database. */
  private static ms = 1_700_000_000_000;
  constructor(readonly partitions = 4) {}

  add(...events: TestEvent[]): LogRecord[] {
    const out: LogRecord[] = [];
    for (const ev of events) {
      const p = partitionOf(ev.id, this.partitions);
      const stream = keys.stream(p, ev.kind, ev.id);
      const version = (this.versions.get(stream) ?? 0) + 1;
      this.versions.set(stream, version);
      const id = `${LogBuilder.ms++}-0`;
      const e = encodeEvent({ s: CURRENT_SCHEMA, type: ev.type, version, at: ev.at, data: ev.data });
      const rec: LogRecord = {
        partition: p,
        id,
        fields: new Map([
          ["k", Buffer.from(stream)],
          ["o", Buffer.from(id)],
          ["e", e],
          ["h", Buffer.from("00")],
        ]),
      };
      this.entries.push(rec);
      out.push(rec);
    }
    return out;
  }
}

const day = (d: number, s = 0) => new Date(Date.UTC(2026, 10, 1 + d, 10, 0, s)).toISOString();

/** A small deterministic pseudo-random generator (tests stay reproducible without a seed file). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/**
 * A chat workload: `conversations` conversations over a few tenants/users/models; each gets
 * `turns` messages whose replies stream `deltas` deltas and end completed, cancelled or failed.
 * Events of different conversations interleave like real traffic. Also sessions and ledgers.
 */
export function chatWorkload(seed: number, o: { conversations: number; turns: number; deltas: number; prefix?: string }): TestEvent[] {
  const r = rng(seed);
  const pre = o.prefix ?? `s${seed}`;
  const tenants = ["acme", "globex"];
  const models = ["gpt-sim", "gpt-sim-large"];
  const queues: TestEvent[][] = [];
  for (let c = 0; c < o.conversations; c++) {
    const tenant = tenants[c % tenants.length] as string;
    const user = `u${Math.floor(r() * 5)}`;
    const model = models[Math.floor(r() * models.length)] as string;
    const id = `${pre}-c${c}`;
    const d0 = Math.floor(r() * 3);
    const q: TestEvent[] = [
      { kind: "conversation", id, type: "conversation.created", at: day(d0), data: { title: `t${c}`, model, ownerId: user, tenantId: tenant, projectId: c % 3 === 0 ? null : "proj1" } },
    ];
    for (let t = 0; t < o.turns; t++) {
      const m = `${id}-m${t}`;
      const a = `${id}-a${t}`;
      const at = day(d0 + t, t);
      q.push({ kind: "conversation", id, type: "message.received", at, data: { messageId: m, clientMessageId: `cm${t}`, userId: user, text: `hello ${t}` } });
      q.push({ kind: "conversation", id, type: "assistant.started", at, data: { messageId: a, replyTo: m, model } });
      const n = Math.floor(r() * (o.deltas + 1));
      let text = "";
      for (let i = 0; i < n; i++) {
        const piece = `w${i} `;
        text += piece;
        q.push({ kind: "conversation", id, type: "assistant.delta", at, data: { messageId: a, index: i, text: piece } });
      }
      const usage = { inputTokens: 3 + t, outputTokens: n };
      const costMicros = usage.inputTokens * 2 + usage.outputTokens * 7;
      const end = r();
      if (end < 0.7) q.push({ kind: "conversation", id, type: "assistant.completed", at, data: { messageId: a, text, finishReason: "stop", usage, costMicros } });
      else if (end < 0.85) q.push({ kind: "conversation", id, type: "assistant.cancelled", at, data: { messageId: a, usage, costMicros } });
      else q.push({ kind: "conversation", id, type: "assistant.failed", at, data: { messageId: a, usage, costMicros, code: "UPSTREAM", message: "boom" } });
    }
    queues.push(q);
  }
  // Interleave conversations, keeping each conversation's own order.
  const out: TestEvent[] = [];
  while (queues.some((q) => q.length > 0)) {
    const live = queues.filter((q) => q.length > 0);
    const q = live[Math.floor(r() * live.length)] as TestEvent[];
    out.push(q.shift() as TestEvent);
  }
  return out;
}
