import { readFileSync, readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { spawnServer, type SpawnedServer } from "../../bench/lib/spawn.js";

/**
 * bench/lib/spawn.ts `unnice` (fan-out `--nice-load`): a server started from a niced load generator
 * runs at the normal priority from its first instruction, every thread included.
 */
const SCRIPT = new URL("./fixtures/listen.ts", import.meta.url).pathname;
const niceOf = (pid: number, tid = pid): number => {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
};
const threads = (pid: number): number[] => readdirSync(`/proc/${pid}/task`).map(Number);
const root = typeof process.getuid === "function" && process.getuid() === 0;

describe.skipIf(!root)("spawnServer unnice (root)", () => {
  const started: SpawnedServer[] = [];
  const before = getPriority();
  afterAll(async () => {
    setPriority(before);
    await Promise.all(started.map((s) => s.stop()));
  });

  it("a server spawned by a process at nice 7 with unnice 7 runs at nice 0 in every thread; without it, at 7", async () => {
    setPriority(7);
    try {
      const plain = await spawnServer({ script: SCRIPT, env: {} });
      const unniced = await spawnServer({ script: SCRIPT, env: {}, unnice: 7 });
      started.push(plain, unniced);
      expect(threads(plain.pid).map((t) => niceOf(plain.pid, t))).toEqual(threads(plain.pid).map(() => 7));
      const ts = threads(unniced.pid);
      expect(ts.length).toBeGreaterThan(1);
      expect(ts.map((t) => niceOf(unniced.pid, t))).toEqual(ts.map(() => 0));
    } finally {
      setPriority(before);
    }
  });
});
