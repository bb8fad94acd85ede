import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode } from "../../core/codec.js";
import { createLogger } from "../../core/logger.js";
import { ReplyListener, sendReply, type CommandResult } from "../../actors/runtime/index.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * Decisions of one tick for the same edge node travel as one reply-stream entry with several
 * `id`/`r` pairs (reply-bus.ts): every waiter still gets exactly its own decision, and an entry
 * of one pair (the format before batching) is still read.
 */
describe.each(REDIS_MODES)("reply stream batching on %s Redis", (mode) => {
  let r: TestRedis;
  let listener: ReplyListener;
  const log = createLogger("silent");

  beforeAll(async () => {
    r = await testRedis(mode);
    listener = new ReplyListener(r.duplicate(), log);
    listener.start();
  });
  afterAll(async () => {
    await listener?.stop();
    await r?.cleanup();
  });

  it("answers each of 100 decisions sent in one tick, from fewer entries than decisions", async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `cmd-${i}`);
    const waits = ids.map((id) => listener.wait(id, 10_000));
    await Promise.all(ids.map((id, i) => sendReply(r.client, listener.key, id, { ok: true, value: { i } })));
    const got = await Promise.all(waits);
    expect(got).toEqual(ids.map((_, i) => ({ ok: true, value: { i } })));
    const entries = Number(await r.client.xlen(listener.key));
    expect(entries).toBeLessThan(ids.length);
  });

  it("still reads an entry carrying a single decision", async () => {
    const wait = listener.wait("single", 10_000);
    const result: CommandResult = { ok: false, error: { code: "CONFLICT", message: "no" } };
    await r.client.xadd(listener.key, "*", "id", "single", "r", encode(result));
    expect(await wait).toEqual(result);
  });
});
