import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { PartitionLease, fenceKey } from "../../core/redis/lease.js";
import { REDIS_MODES, testRedis, type TestRedis } from "../support/redis.js";

/**
 * Partition leases against a real Redis and the cluster: two processes' leasers never own the same
 * partition at the same moment, they share the partitions out, and a dead owner's partitions are
 * taken over after the TTL with a larger fencing token.
 */
const P = 8;

async function waitFor(check: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function disjoint(a: number[], b: number[]): boolean {
  const s = new Set(a);
  return b.every((p) => !s.has(p));
}

describe.each(REDIS_MODES)("PartitionLease on %s Redis", (mode) => {
  let r: TestRedis;
  const leases: PartitionLease[] = [];
  beforeAll(async () => {
    r = await testRedis(mode);
  });
  afterAll(async () => {
    for (const l of leases) await l.stop().catch(() => undefined);
    await r.cleanup();
  });

  const lease = (role: string, owner: string) => {
    // Each "process" gets its own connection, as separate processes would.
    const l = new PartitionLease({ redis: r.duplicate(), role, partitions: P, owner, ttlMs: 600, renewMs: 100, handoverGraceMs: 50 });
    leases.push(l);
    return l;
  };

  it("two processes never own the same partition at once, and share them out evenly", async () => {
    const a = lease("share", "a");
    const b = lease("share", "b");
    a.start();
    let overlaps = 0;
    let samples = 0;
    const sample = () => {
      samples++;
      if (!disjoint(a.owned(), b.owned())) overlaps++;
    };
    await waitFor(() => (sample(), a.owned().length === P), "a to own every partition alone");
    b.start();
    await waitFor(() => (sample(), a.owned().length === P / 2 && b.owned().length === P / 2), "an even split");
    // Keep watching for a while after the split: renewals must not flap ownership.
    const until = Date.now() + 800;
    while (Date.now() < until) {
      sample();
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(overlaps).toBe(0);
    expect(samples).toBeGreaterThan(50);
    expect([...a.owned(), ...b.owned()].sort((x, y) => x - y)).toEqual(Array.from({ length: P }, (_, i) => i));

    // A graceful stop hands everything over without waiting for the TTL.
    await a.stop();
    await waitFor(() => (sample(), b.owned().length === P), "b to take a's partitions after a stopped");
    expect(overlaps).toBe(0);
  });

  it("a dead owner's partitions are taken over after the TTL, with larger fencing tokens", async () => {
    const a = lease("crash", "a");
    a.start();
    await waitFor(() => a.owned().length === P, "a to own everything");
    const oldTokens = a.owned().map((p) => a.token(p) ?? -1);
    a.abandon(); // crashed: no release, no more renewals

    const b = lease("crash", "b");
    b.start();
    let overlaps = 0;
    await waitFor(() => {
      if (!disjoint(a.owned(), b.owned())) overlaps++;
      return b.owned().length === P;
    }, "b to take over after the TTL");
    expect(overlaps).toBe(0);
    expect(a.owned()).toEqual([]);
    for (let p = 0; p < P; p++) {
      expect(b.token(p)).toBeGreaterThan(oldTokens[p]!);
      expect(Number(await r.client.get(fenceKey(p, "crash")))).toBe(b.token(p));
      expect(await r.client.get(keys.lease(p, "crash"))).toBe(`b|${b.token(p)}`);
    }
  });

  it("property: under any sequence of joins, graceful leaves and crashes, no partition ever has two owners", async () => {
    type Step = { who: number; what: "start" | "stop" | "crash"; afterMs: number };
    const step = fc.record({
      who: fc.integer({ min: 0, max: 2 }),
      what: fc.constantFrom<Step["what"]>("start", "start", "stop", "crash"),
      afterMs: fc.integer({ min: 0, max: 250 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 8 }), async (steps) => {
        const role = `prop-${randomUUID().slice(0, 6)}`;
        // A crashed or stopped process is replaced by a fresh one with a new id, as a restart would be.
        const slots: Array<PartitionLease | undefined> = [undefined, undefined, undefined];
        const everyone: PartitionLease[] = [];
        let overlaps = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            const seen = new Set<number>();
            for (const l of everyone) for (const p of l.owned()) (seen.has(p) ? overlaps++ : seen.add(p));
            await new Promise((res) => setTimeout(res, 3));
          }
        })();
        for (const s of steps) {
          await new Promise((res) => setTimeout(res, s.afterMs));
          const cur = slots[s.who];
          if (s.what === "start" && !cur) {
            const l = lease(role, `${role}-${s.who}-${randomUUID().slice(0, 4)}`);
            everyone.push(l);
            slots[s.who] = l;
            l.start();
          } else if (s.what === "stop" && cur) {
            await cur.stop();
            slots[s.who] = undefined;
          } else if (s.what === "crash" && cur) {
            cur.abandon();
            slots[s.who] = undefined;
          }
        }
        // Whoever is left ends up with every partition between them, still without overlap.
        const alive = slots.filter((l): l is PartitionLease => l !== undefined);
        if (alive.length > 0) {
          await waitFor(() => alive.reduce((n, l) => n + l.owned().length, 0) === P, "the live members to cover every partition");
        }
        sampling = false;
        await sampler;
        for (const l of alive) await l.stop();
        expect(overlaps).toBe(0);
      }),
      { numRuns: 4 },
    );
  });
});
