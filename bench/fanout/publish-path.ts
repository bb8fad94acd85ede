/**
 * The edge's per-event publish path in isolation (issue 5: where the fan-out's JavaScript goes per
 * live event), against what the bare ceiling C does per entry, in one process on the same entries:
 *
 *   npx tsx bench/fanout/publish-path.ts [--events 200000] [--rounds 5]
 *
 * - `edge`: a real Fanout (100 conversations, 10 topic sinks each, the Socket.IO encoder, the
 *   Socket.IO publish log and the delivery-lag histogram observing every event, as `tributary edge`
 *   wires them), fed raw stream entries through `publishEntries` as the XREAD loop does; `publish`
 *   is a no-op so uWS's native send (the same for both) is left out.
 * - `ceiling`: bench/lib/stream-follower.ts's per-entry work — decode, envelope JSON — and the
 *   same no-op publish.
 *
 * `--no-ring` / `--no-lag` leave out the publish log / the lag histogram (what each costs).
 *
 * Redis is not used: the fan-out's client is a stub whose blocking read never returns. The figure
 * is µs of JavaScript per event (best round), alternating the two so both see the same machine.
 */
import { Histogram } from "prom-client";
import { encodeEvent, decodeEvent } from "../../core/codec.js";
import { offsetMillis } from "../../core/envelope.js";
import { Fanout } from "../../edge/fanout/fanout.js";
import type { RawEntry } from "../../edge/fanout/entries.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { chatEventFrame } from "../../edge/socketio/frames.js";
import { PublishRing } from "../../edge/socketio/journal.js";
import { hasFlag, numberFlag } from "../lib/args.js";

const EVENTS = numberFlag("--events", 200_000);
const ROUNDS = numberFlag("--rounds", 5);
const CONVERSATIONS = 100;
const PER_ROUND = 400; // entries per XREAD reply at ~84k deliveries/s in the traced runs

const never = new Promise<never>(() => undefined);
const stubRedis = {
  options: {},
  xrevrange: async () => [],
  duplicate: () => stubRedis,
  xreadBuffer: () => never,
  multi: () => ({ xadd: () => ({ pexpire: () => ({ exec: async () => [] }) }) }),
  del: async () => 0,
  disconnect: () => undefined,
} as unknown as RedisClient;

// Entries as the append script writes them: field "e" = msgpack StoredEvent, "h" = chain hash.
const base = Date.now();
function entries(conversation: number, n: number, from: number): RawEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const k = from + i;
    const id = Buffer.from(`${base + k}-${conversation * 16 + 3}`, "latin1");
    const e = encodeEvent({ s: 1, type: "assistant.delta", version: k + 2, at: new Date(base + k).toISOString(), data: { messageId: "bench-reply", index: k, text: "token " } });
    return [id, [Buffer.from("e"), e, Buffer.from("h"), Buffer.alloc(32, 7)]];
  });
}


async function main(): Promise<void> {
  // The same no-op publish for both paths (uWS's native send is not measured).
  let sink = 0;
  const publish = (_topic: string, frame: string): void => {
    sink += frame.length;
  };
  const fanout = new Fanout({ redis: stubRedis, partitions: 16, publish, log: undefined });
  fanout.registerEncoder("sio", (env) => chatEventFrame(env));
  const ring = new PublishRing(8192);
  if (!hasFlag("--no-ring")) fanout.onPublish((env, seq) => ring.push(seq, env.conversationId, env.offset));
  const lag = new Histogram({ name: "bench_lag_ms", help: "lag", labelNames: ["transport"], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }).labels({ transport: "fanout" });
  if (!hasFlag("--no-lag")) {
    fanout.onPublish((env) => {
      const at = offsetMillis(env.offset);
      if (at > 0) lag.observe(Math.max(0, Date.now() - at));
    });
  }
  const ids = Array.from({ length: CONVERSATIONS }, (_, i) => `c${i}`);
  for (const id of ids) {
    ring.track(id);
    for (let s = 0; s < 10; s++) await fanout.attach(id, null, { encoder: "sio", deliver: () => true, join: () => undefined });
  }
  // The followers, as the XREAD loop sees them (internal: reached through the read group's map).
  const followers = ids.map((id) => (fanout as unknown as { followers: Map<string, { publishEntries(e: RawEntry[]): void }> }).followers.get(id)!);

  const perConv = Math.ceil(EVENTS / CONVERSATIONS);
  const batches: RawEntry[][] = ids.map((_, c) => entries(c, perConv, 0));
  const perRoundPerConv = Math.max(1, Math.round(PER_ROUND / CONVERSATIONS));

  const runEdge = (): number => {
    const t0 = performance.now();
    for (let at = 0; at < perConv; at += perRoundPerConv) {
      for (let c = 0; c < CONVERSATIONS; c++) followers[c]!.publishEntries(batches[c]!.slice(at, at + perRoundPerConv));
    }
    return ((performance.now() - t0) * 1000) / (perConv * CONVERSATIONS);
  };
  const runCeiling = (): number => {
    const t0 = performance.now();
    for (let at = 0; at < perConv; at += perRoundPerConv) {
      for (let c = 0; c < CONVERSATIONS; c++) {
        const conversationId = ids[c]!;
        for (const [idBuf, fields] of batches[c]!.slice(at, at + perRoundPerConv)) {
          const offset = idBuf.toString();
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i]?.toString() !== "e") continue;
            const rec = decodeEvent(fields[i + 1] as Buffer);
            publish(conversationId, JSON.stringify({ conversationId, offset, version: rec.version, type: rec.type, at: rec.at, data: rec.data }));
          }
        }
      }
    }
    return ((performance.now() - t0) * 1000) / (perConv * CONVERSATIONS);
  };

  const edge: number[] = [];
  const ceiling: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Each edge round needs entries newer than the followers' positions.
    if (r > 0) for (let c = 0; c < CONVERSATIONS; c++) batches[c] = entries(c, perConv, r * perConv);
    edge.push(runEdge());
    ceiling.push(runCeiling());
  }
  const best = (xs: number[]): number => Math.min(...xs);
  process.stdout.write(
    `events/round ${perConv * CONVERSATIONS}, ${ROUNDS} rounds; µs of JS per event (best / all):\n` +
      `  edge    ${best(edge).toFixed(2)}  [${edge.map((x) => x.toFixed(2)).join(", ")}]\n` +
      `  ceiling ${best(ceiling).toFixed(2)}  [${ceiling.map((x) => x.toFixed(2)).join(", ")}]\n` +
      `  ratio   ${(best(edge) / best(ceiling)).toFixed(2)}  (published ${fanout.stats().published}, ${sink > 0 ? "ok" : ""})\n`,
  );
  await fanout.stop();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
