import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LuaScript } from "../../core/redis/lua-script.js";
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
