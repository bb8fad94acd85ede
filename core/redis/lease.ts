import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { errorMessage } from "../errors.js";
import { fnv1a32 } from "../partition.js";
import { keys } from "../keys.js";
import { createLogger, type Logger } from "../logger.js";
import type { RedisClient } from "./connection.js";
import { LuaScript } from "./lua-script.js";

/**
 * Partition leases (I3: one worker owns a partition at a time) and a fair share of partitions
 * between the live processes of a role.
 *
 * - A lease is `{pN}:lease:<role>` = "<owner>|<token>", taken with SET-if-absent + PX, renewed and
 *   released by compare-and-set scripts. The token comes from INCR on `{pN}:lease:<role>:fence`,
 *   so every new holder's token is larger than all earlier ones: a late writer is recognisable.
 * - `owned()` reports a partition only while the lease is surely still ours: until the start of the
 *   last successful renewal + ttl × (1 − safety). Redis expires the key no earlier than that start
 *   + ttl, so two processes never both report the same partition (given similar clock rates).
 * - Sharing: each process heartbeats into `tributary:members:<role>` (a sorted set scored by
 *   expiry on the Redis clock) and holds at most ceil(P / live members). Extra partitions are
 *   dropped from `owned()` at once and released in Redis after `handoverGraceMs`, which gives
 *   the consumer of that partition time to finish its in-flight batch before a new owner starts.
 */
export interface PartitionLeaseOptions {
  redis: RedisClient;
  /** e.g. "actors", "projector". Leases and membership are per role. */
  role: string;
  /** Number of partitions (config PARTITIONS). */
  partitions: number;
  /** Unique per process. Default `${hostname}-${pid}-${random}`. */
  owner?: string;
  /** Lease lifetime. A crashed owner's partitions are taken over after at most this long. Default 10 s. */
  ttlMs?: number;
  /** How often leases are renewed and the share recomputed. Must be well below ttlMs. Default ttlMs / 3. */
  renewMs?: number;
  /** Fraction of ttl given up as a margin for clock drift and slow round trips. Default 0.2. */
  safety?: number;
  /** Delay between dropping a partition from owned() and releasing its lease. Default renewMs. */
  handoverGraceMs?: number;
  onAcquired?: (partition: number, token: number) => void;
  /** Called when a lease is found to be lost (expired, or taken by another owner). */
  onLost?: (partition: number) => void;
  log?: Logger;
}

interface Held {
  token: number;
  value: string;
  /** Local time until which this lease is surely ours. */
  validUntil: number;
  /** Set when the partition is being handed over: release in Redis at this time. */
  releaseAt?: number;
}

const acquireScript = LuaScript.file("lease-acquire-2.lua");
const renewScript = LuaScript.file("lease-renew-1.lua");
const releaseScript = LuaScript.file("lease-release-1.lua");
const membersScript = LuaScript.file("lease-members-1.lua");

export const membersKey = (role: string): string => `tributary:members:${role}`;
export const fenceKey = (p: number, role: string): string => `${keys.lease(p, role)}:fence`;

export class PartitionLease {
  readonly owner: string;
  private readonly o: Required<Omit<PartitionLeaseOptions, "owner" | "onAcquired" | "onLost" | "log">> &
    Pick<PartitionLeaseOptions, "onAcquired" | "onLost"> & { log: Logger };
  private readonly held = new Map<number, Held>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private liveMembers = 1;

  constructor(o: PartitionLeaseOptions) {
    if (!Number.isInteger(o.partitions) || o.partitions < 1) throw new RangeError("partitions must be an integer ≥ 1");
    const ttlMs = o.ttlMs ?? 10_000;
    const renewMs = o.renewMs ?? Math.floor(ttlMs / 3);
    if (renewMs >= ttlMs) throw new RangeError("renewMs must be below ttlMs");
    this.owner = o.owner ?? `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
    this.o = {
      redis: o.redis,
      role: o.role,
      partitions: o.partitions,
      ttlMs,
      renewMs,
      safety: o.safety ?? 0.2,
      handoverGraceMs: o.handoverGraceMs ?? renewMs,
      onAcquired: o.onAcquired,
      onLost: o.onLost,
      log: o.log ?? createLogger("silent"),
    };
    this.o.log = this.o.log.child({ role: o.role, owner: this.owner });
  }

  /** Starts heartbeating and acquiring; the first round runs at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.ticking = this.tick()
        .catch((e: unknown) => this.o.log.error({ err: errorMessage(e) }, "lease round failed"))
        .finally(() => {
          if (this.running) this.timer = setTimeout(loop, this.o.renewMs);
        });
    };
    loop();
  }

  /** Releases every lease and leaves the membership, so others take over without waiting for the TTL. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    const held = [...this.held.entries()];
    this.held.clear();
    await Promise.all(held.map(([p, h]) => releaseScript.run(this.o.redis, [keys.lease(p, this.o.role)], [h.value]).catch(() => 0)));
    await membersScript.run(this.o.redis, [membersKey(this.o.role)], [this.owner, 0]).catch(() => 0);
  }

  /** Simulates a crash (tests): stops renewing without releasing; the leases expire after the TTL. */
  abandon(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Partitions this process may work on now, ascending. */
  owned(): number[] {
    const now = Date.now();
    const out: number[] = [];
    for (const [p, h] of this.held) if (h.releaseAt === undefined && h.validUntil > now) out.push(p);
    return out.sort((a, b) => a - b);
  }

  /** Fencing token of a partition we hold, for writes that must be recognisable as ours. */
  token(partition: number): number | undefined {
    const h = this.held.get(partition);
    return h && h.releaseAt === undefined && h.validUntil > Date.now() ? h.token : undefined;
  }

  /** Live members at the last heartbeat (including this one). */
  members(): number {
    return this.liveMembers;
  }

  /** One round: heartbeat, renew, hand over extras, acquire up to the fair share. */
  async tick(): Promise<void> {
    const started = Date.now();
    const validUntil = started + Math.floor(this.o.ttlMs * (1 - this.o.safety));
    const live = Number(await membersScript.run(this.o.redis, [membersKey(this.o.role)], [this.owner, this.o.ttlMs]));
    this.liveMembers = Math.max(1, live);
    const target = Math.ceil(this.o.partitions / this.liveMembers);

    // Renew what we hold (also partitions being handed over: they stay ours until released).
    await Promise.all(
      [...this.held.entries()].map(async ([p, h]) => {
        const ok = Number(await renewScript.run(this.o.redis, [keys.lease(p, this.o.role)], [h.value, this.o.ttlMs]));
        if (ok === 1) {
          h.validUntil = validUntil;
        } else {
          this.held.delete(p);
          this.o.log.warn({ partition: p, token: h.token }, "lease lost");
          if (h.releaseAt === undefined) this.o.onLost?.(p);
        }
      }),
    );

    // Hand-overs whose grace period is over.
    const now = Date.now();
    for (const [p, h] of [...this.held.entries()]) {
      if (h.releaseAt !== undefined && h.releaseAt <= now) {
        this.held.delete(p);
        await releaseScript.run(this.o.redis, [keys.lease(p, this.o.role)], [h.value]);
      }
    }

    const active = () => [...this.held.entries()].filter(([, h]) => h.releaseAt === undefined).map(([p]) => p);
    let mine = active();
    if (mine.length > target) {
      // Give the highest partitions back; newcomers pick them up on their next round.
      for (const p of mine.sort((a, b) => b - a).slice(0, mine.length - target)) {
        const h = this.held.get(p);
        if (h) h.releaseAt = Date.now() + this.o.handoverGraceMs;
        this.o.log.info({ partition: p, target }, "handing partition over");
      }
      return;
    }
    if (mine.length === target || !this.running) return;

    // Start at a point derived from our id, so members do not all contend for partition 0 first.
    const start = fnv1a32(this.owner) % this.o.partitions;
    for (let i = 0; i < this.o.partitions && mine.length < target; i++) {
      const p = (start + i) % this.o.partitions;
      const h = this.held.get(p);
      if (h && h.releaseAt === undefined) continue;
      if (h) {
        // Handing over, but we need it again: keep it.
        delete h.releaseAt;
        mine = active();
        continue;
      }
      const r = await acquireScript.run(this.o.redis, [keys.lease(p, this.o.role), fenceKey(p, this.o.role)], [this.owner, this.o.ttlMs]);
      if (r === null || r === undefined) continue;
      const token = Number(r);
      this.held.set(p, { token, value: `${this.owner}|${token}`, validUntil });
      mine = active();
      this.o.log.info({ partition: p, token }, "lease acquired");
      this.o.onAcquired?.(p, token);
    }
  }
}
