import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { LuaScript } from "../../core/redis/lua-script.js";
import { RespArgs } from "../../core/redis/resp-args.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * LuaScript.send (core/redis/lua-script.ts): written at once on a single Redis (no auto-pipelining),
 * through `run` on a cluster — either way the client's key prefix applies to KEYS, and a script the
 * server does not know yet (NOSCRIPT: a restart, a failover, or simply the first call) runs by EVAL.
 */
describe.each(REDIS_MODES)("LuaScript.send (%s)", (mode) => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(() => r.cleanup());

  it("runs a script unknown to the server (NOSCRIPT → EVAL), then by its sha, with the key prefix on KEYS only", async () => {
    // A source no server has seen: the first EVALSHA must answer NOSCRIPT.
    const script = new LuaScript("probe", `redis.call('SET', KEYS[1], ARGV[1]) return { KEYS[1], ARGV[1] } -- ${randomUUID()}`);
    const key = "{p0}:probe";
    expect(await script.send(r.client, [key], ["v1"])).toEqual([`${r.prefix}${key}`, "v1"]);
    expect(await r.client.get(key)).toBe("v1");
    // Now cached by the server: the same call goes by EVALSHA.
    expect(await script.send(r.client, [key], [Buffer.from("v2")])).toEqual([`${r.prefix}${key}`, "v2"]);
    expect(await r.client.get(key)).toBe("v2");
  });

  it("a script error rejects (it is not taken for NOSCRIPT)", async () => {
    const script = new LuaScript("fails", `return redis.error_reply('BOOM ${randomUUID()}')`);
    await expect(script.send(r.client, ["{p0}:x"], [])).rejects.toThrow(/BOOM/);
  });
});

/**
 * LuaScript.sendArgs (single Redis only): arguments encoded beforehand (core/redis/resp-args.ts,
 * KEYS already prefixed by the caller), sent as one frame through the client's queue; NOSCRIPT →
 * EVAL of the same arguments; bulk replies come back as Buffers.
 */
describe("LuaScript.sendArgs (single)", () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await testRedis("single");
  });
  afterAll(() => r.cleanup());

  it("NOSCRIPT → EVAL with the same arguments, then EVALSHA; replies in order with other commands", async () => {
    const script = new LuaScript("probe", `redis.call('SET', KEYS[1], ARGV[1]) return { KEYS[1], ARGV[1], tonumber(ARGV[2]) } -- ${randomUUID()}`);
    const key = "{p0}:probe";
    const args = (v: string, n: number): RespArgs => new RespArgs(16).int(1).string(key, Buffer.from(r.prefix)).string(v).int(n);
    const client = r.client as Redis;
    expect(await script.sendArgs(client, args("v1", 41))).toEqual([Buffer.from(`${r.prefix}${key}`), Buffer.from("v1"), 41]);
    expect(await client.get(key)).toBe("v1");
    // Now by its sha, interleaved with an ordinary command on the same connection: each reply
    // reaches its own command, in the order written.
    const [second, got, third] = await Promise.all([script.sendArgs(client, args("v2", 42)), client.get(key), script.sendArgs(client, args("v3", 43))]);
    expect(second).toEqual([Buffer.from(`${r.prefix}${key}`), Buffer.from("v2"), 42]);
    expect(got).toBe("v2");
    expect(third).toEqual([Buffer.from(`${r.prefix}${key}`), Buffer.from("v3"), 43]);
    expect(await client.get(key)).toBe("v3");
  });

  it("a script error rejects (it is not taken for NOSCRIPT)", async () => {
    const script = new LuaScript("fails", `return redis.error_reply('BOOM ${randomUUID()}')`);
    await expect(script.sendArgs(r.client as Redis, new RespArgs(8).int(0))).rejects.toThrow(/BOOM/);
  });
});
