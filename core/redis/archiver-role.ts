import type { BlobStore } from "../blob/blob-store.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { createArchiver, type ArchiveReport, type ArchiverOptions, type RunOptions } from "./archiver.js";
import type { RedisClient } from "./connection.js";
import { PartitionLease } from "./lease.js";

/**
 * The archiver as a background role of `tributary start`: a PartitionLease with role "archiver"
 * shares the partitions between every running process (each archives only the partitions it
 * holds), and a pass runs every `intervalMs`. One call to start, one to stop:
 *
 *   const archiving = startArchiverRole({ redis, blob, partitions: config.PARTITIONS, retentionMs: config.RETENTION, log });
 *   …
 *   await archiving.stop();
 */
export interface ArchiverRoleOptions extends Omit<ArchiverOptions, "partitionFilter"> {
  blob: BlobStore;
  redis: RedisClient;
  /** Time between passes. Default: a quarter of the retention, between 10 s and 5 min. */
  intervalMs?: number;
  /** Per-pass options (trimLog, gc). */
  run?: RunOptions;
  /** Lease owner name (unique per process); default chosen by PartitionLease. */
  owner?: string;
  log?: Logger;
}

export interface ArchiverRole {
  /** Run one pass now, serialised with the periodic passes; partitions not (yet) leased are skipped. */
  runNow(): Promise<ArchiveReport>;
  /** Stop the passes (waiting for a running one) and release the leases. */
  stop(): Promise<void>;
  readonly lease: PartitionLease;
}

export function defaultArchiveIntervalMs(retentionMs: number): number {
  return Math.min(300_000, Math.max(10_000, Math.floor(retentionMs / 4)));
}

export function startArchiverRole(o: ArchiverRoleOptions): ArchiverRole {
  const lease = new PartitionLease({
    redis: o.redis,
    role: "archiver",
    partitions: o.partitions,
    ...(o.owner ? { owner: o.owner } : {}),
    // A pass can take a while; a generous lease keeps ownership stable across one.
    ttlMs: 30_000,
    ...(o.log ? { log: o.log } : {}),
  });
  const archiver = createArchiver(o.redis, o.blob, {
    ...o,
    // Snapshot the owned set per call: ownership may move between passes, never mid-decision.
    partitionFilter: (p) => lease.owned().includes(p),
  });
  const intervalMs = o.intervalMs ?? defaultArchiveIntervalMs(o.retentionMs);
  let chain: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const pass = (): Promise<ArchiveReport> => {
    const next = chain.then(() => archiver.runOnce(o.run ?? {}));
    chain = next.catch(() => undefined);
    return next;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      pass()
        .then((r) => {
          if (r.events > 0 || r.failures.length > 0) o.log?.info({ ...r, failures: r.failures.length }, "archive pass");
          for (const f of r.failures) o.log?.error({ stream: f.stream, err: f.error }, "archive failed for stream");
        })
        .catch((e: unknown) => o.log?.error({ err: errorMessage(e) }, "archive pass failed"))
        .finally(schedule);
    }, intervalMs);
  };

  lease.start();
  schedule();
  return {
    lease,
    runNow: pass,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await chain;
      await lease.stop();
    },
  };
}
