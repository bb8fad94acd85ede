import { TributaryError } from "../errors.js";
import { isOffset } from "../envelope.js";
import type { ReadOptions } from "../event-store.js";
import type { RedisClient } from "./connection.js";

/**
 * XRANGE with the contract's bounds (CONTRACT §5): `from` exclusive ("0" or absent = the beginning),
 * `to` inclusive. Values stay Buffers: `e` is msgpack, and the hash chain covers the exact bytes.
 */
export interface RawStreamEntry {
  id: string;
  fields: Map<string, Buffer>;
}

export function checkReadOptions(opts: ReadOptions): void {
  if (opts.from !== undefined && !isOffset(opts.from)) throw new TributaryError("BAD_REQUEST", `not a stream offset: ${opts.from}`);
  if (opts.to !== undefined && !isOffset(opts.to)) throw new TributaryError("BAD_REQUEST", `not a stream offset: ${opts.to}`);
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 1)) {
    throw new TributaryError("BAD_REQUEST", `limit must be a positive integer, got ${opts.limit}`);
  }
}

/** XRANGE start argument for an exclusive `from`. Redis ≥ 6.2 understands "(id". */
export function rangeStart(from: string | undefined): string {
  return from === undefined || from === "0" || from === "0-0" ? "-" : `(${from}`;
}

export async function xrangeRaw(redis: RedisClient, key: string, opts: ReadOptions = {}): Promise<RawStreamEntry[]> {
  checkReadOptions(opts);
  const start = rangeStart(opts.from);
  const end = opts.to ?? "+";
  const reply =
    opts.limit === undefined
      ? await redis.xrangeBuffer(key, start, end)
      : await redis.xrangeBuffer(key, start, end, "COUNT", opts.limit);
  return reply.map(([id, flat]) => {
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set((flat[i] as Buffer).toString("utf8"), flat[i + 1] as Buffer);
    return { id: id.toString("utf8"), fields };
  });
}

/** Every entry of a stream in pages of `pageSize`, oldest first, without holding it all in memory. */
export async function* xrangePages(
  redis: RedisClient,
  key: string,
  opts: { from?: string; to?: string; pageSize?: number } = {},
): AsyncGenerator<RawStreamEntry[]> {
  const pageSize = opts.pageSize ?? 500;
  let from = opts.from;
  for (;;) {
    const page = await xrangeRaw(redis, key, { ...(from === undefined ? {} : { from }), ...(opts.to === undefined ? {} : { to: opts.to }), limit: pageSize });
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    from = (page[page.length - 1] as RawStreamEntry).id;
  }
}
