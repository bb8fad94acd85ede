import type { DeadLetter } from "../consumer.js";
import { TributaryError } from "../errors.js";
import { keys } from "../keys.js";
import type { RedisClient } from "./connection.js";
import { LuaScript } from "./lua-script.js";

/**
 * Dead letters (I5): `{pN}:dlq`, one stream per partition, so moving an entry there from any stream
 * of the partition is one atomic script on one slot. Ids shown to operators are self-describing,
 * `<partition>/<entryId>`, so `show`, `redrive` and `purge` need no search across partitions.
 *
 * Entry fields: origin, group, originId, error, deliveries, at, and the original fields as `f:<name>`
 * (plus `missing` = 1 when the original entry had been trimmed before it could be copied).
 */
const moveScript = LuaScript.file("dlq-move-2.lua");
const redriveScript = LuaScript.file("dlq-redrive-2.lua");

export interface DeadLetterMove {
  partition: number;
  /** Origin stream as the application names it (no client key prefix). */
  stream: string;
  group: string;
  id: string;
  /** Consumer that must still own the pending entry; "" = any. */
  owner: string;
  error: string;
  deliveries: number;
}

/** Moves a pending entry to the DLQ and acknowledges it, atomically. Null when it was no longer ours. */
export async function moveToDeadLetters(redis: RedisClient, m: DeadLetterMove): Promise<string | null> {
  const r = await moveScript.run(
    redis,
    [m.stream, keys.dlq(m.partition)],
    [m.group, m.id, m.owner, m.error, String(m.deliveries), new Date().toISOString(), m.stream],
  );
  return typeof r === "string" ? r : r instanceof Buffer ? r.toString() : null;
}

/** A dead letter with the partition it lives in; `id` is `<partition>/<entryId>`. */
export interface DeadLetterEntry extends DeadLetter {
  partition: number;
  entryId: string;
  /** The original entry was gone (trimmed) when it was dead-lettered: `fields` is empty. */
  missing: boolean;
}

export interface DeadLetterListOptions {
  partition?: number;
  group?: string;
  /** Most entries returned, over all partitions. Default 100. */
  limit?: number;
}

const ID_RE = /^(\d{1,4})\/(\d{1,20}-\d{1,20})$/;

/** `3/1732212345678-0` → {partition: 3, entryId}; a malformed id or partition ≥ P is BAD_REQUEST. */
export function parseDeadLetterId(id: string, partitions: number): { partition: number; entryId: string } {
  const m = ID_RE.exec(id);
  if (!m) throw new TributaryError("BAD_REQUEST", `not a dead letter id: ${JSON.stringify(id)} (expected <partition>/<entryId>)`);
  const partition = Number(m[1]);
  if (partition >= partitions) throw new TributaryError("BAD_REQUEST", `partition ${partition} out of range (PARTITIONS=${partitions})`);
  return { partition, entryId: m[2] as string };
}

export function formatDeadLetterId(partition: number, entryId: string): string {
  return `${partition}/${entryId}`;
}

export interface DeadLetters {
  list(opts?: DeadLetterListOptions): Promise<DeadLetterEntry[]>;
  /** Null when there is no such dead letter. */
  show(id: string): Promise<DeadLetterEntry | null>;
  /** Puts the entry (or every entry) back for the group that failed it; returns how many. */
  redrive(id: string | "all"): Promise<number>;
  /** Deletes the entry (or every entry); returns how many. */
  purge(id: string | "all"): Promise<number>;
  /** Number of dead letters per partition (only partitions that have some). */
  count(): Promise<Map<number, number>>;
}

type RawEntry = [Buffer, Buffer[] | null];

function parseEntry(partition: number, id: Buffer, raw: Buffer[] | null): DeadLetterEntry {
  const meta = new Map<string, string>();
  const fields: Record<string, Buffer> = {};
  if (raw) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = raw[i]!.toString();
      const v = raw[i + 1]!;
      if (k.startsWith("f:")) fields[k.slice(2)] = v;
      else meta.set(k, v.toString());
    }
  }
  const entryId = id.toString();
  return {
    id: formatDeadLetterId(partition, entryId),
    partition,
    entryId,
    origin: meta.get("origin") ?? "",
    group: meta.get("group") ?? "",
    originId: meta.get("originId") ?? "",
    error: meta.get("error") ?? "",
    deliveries: Number(meta.get("deliveries") ?? 0),
    at: meta.get("at") ?? "",
    missing: meta.get("missing") === "1",
    fields,
  };
}

export function deadLetters(redis: RedisClient, partitions: number): DeadLetters {
  const all = Array.from({ length: partitions }, (_, i) => i);

  async function range(p: number, start: string, count: number): Promise<DeadLetterEntry[]> {
    // xrangeBuffer, not callBuffer: ioredis 6.0.0 drops callBuffer's command name under auto-pipelining.
    const rows = (await redis.xrangeBuffer(keys.dlq(p), start, "+", "COUNT", count)) as RawEntry[];
    return rows.map(([id, raw]) => parseEntry(p, id, raw));
  }

  /** Every dead letter of a partition, in pages, so a large DLQ is never read in one reply. */
  async function* scan(p: number): AsyncGenerator<DeadLetterEntry> {
    let start = "-";
    for (;;) {
      const page = await range(p, start, 500);
      for (const e of page) yield e;
      if (page.length < 500) return;
      start = `(${page[page.length - 1]!.entryId}`;
    }
  }

  async function show(id: string): Promise<DeadLetterEntry | null> {
    const { partition, entryId } = parseDeadLetterId(id, partitions);
    const rows = (await redis.xrangeBuffer(keys.dlq(partition), entryId, entryId)) as RawEntry[];
    const row = rows[0];
    return row ? parseEntry(partition, row[0], row[1]) : null;
  }

  async function redriveOne(e: DeadLetterEntry): Promise<boolean> {
    const r = await redriveScript.run(redis, [keys.dlq(e.partition), keys.redrive(e.partition, e.group)], [e.entryId, e.group]);
    return r !== null && r !== undefined && r !== 0;
  }

  return {
    async list(opts = {}) {
      const limit = opts.limit ?? 100;
      const out: DeadLetterEntry[] = [];
      for (const p of opts.partition === undefined ? all : [opts.partition]) {
        for await (const e of scan(p)) {
          if (opts.group !== undefined && e.group !== opts.group) continue;
          out.push(e);
          if (out.length >= limit) return out;
        }
      }
      return out;
    },
    show,
    async redrive(id) {
      if (id !== "all") {
        const e = await show(id);
        if (!e) throw new TributaryError("NOT_FOUND", `no dead letter ${id}`);
        return (await redriveOne(e)) ? 1 : 0;
      }
      let n = 0;
      for (const p of all) {
        // Collect first: redriving deletes from the stream being paged through.
        const entries: DeadLetterEntry[] = [];
        for await (const e of scan(p)) entries.push(e);
        for (const e of entries) if (await redriveOne(e)) n++;
      }
      return n;
    },
    async purge(id) {
      if (id !== "all") {
        const { partition, entryId } = parseDeadLetterId(id, partitions);
        const n = Number(await redis.call("XDEL", keys.dlq(partition), entryId));
        if (n === 0) throw new TributaryError("NOT_FOUND", `no dead letter ${id}`);
        return n;
      }
      let n = 0;
      for (const p of all) {
        // XLEN and DEL in one transaction on one key: the count is exactly what was deleted.
        const r = await redis.multi().xlen(keys.dlq(p)).del(keys.dlq(p)).exec();
        n += Number(r?.[0]?.[1] ?? 0);
      }
      return n;
    },
    async count() {
      const m = new Map<number, number>();
      for (const p of all) {
        const len = Number(await redis.call("XLEN", keys.dlq(p)));
        if (len > 0) m.set(p, len);
      }
      return m;
    },
  };
}
