import type { BlobStore } from "../../core/blob/index.js";
import { streamKeys, type StreamRef } from "../../core/keys.js";
import type { RedisClient } from "../../core/redis/connection.js";

/**
 * Actor snapshots in the blob store: `snapshots/<kind>/<id>.json`, overwritten in place. A snapshot
 * is only an optimisation — the stream stays the truth — so a missing, unreadable or too-new snapshot
 * is ignored and the actor is folded from its events.
 */
export interface Snapshot {
  /** Stream version the state reflects. */
  version: number;
  /** Offset of the last folded event: the tail is read after it. */
  offset: string;
  state: unknown;
}

export interface SnapshotStore {
  /** Cheap check whether a snapshot was ever written (no blob round trip for young actors). */
  exists(ref: StreamRef): Promise<boolean>;
  get(ref: StreamRef): Promise<Snapshot | null>;
  put(ref: StreamRef, snap: Snapshot): Promise<void>;
}

function keyOf(ref: StreamRef): string {
  // Ids are validated upstream, but encode anyway: a key segment must be path-safe.
  return `snapshots/${ref.kind}/${encodeURIComponent(ref.id).replace(/\./g, "%2E")}.json`;
}

/**
 * Snapshots in the blob store, with their pointer (the snapshot's version) in the stream's meta hash
 * `{pN}:meta:<kind>:<id>` field `snap` (DESIGN §Keys), written after the blob. The pointer is only a
 * hint: a snapshot is always validated against the stream, so a lost pointer costs a full fold.
 */
export function blobSnapshotStore(blobs: BlobStore, pointer?: SnapshotPointer): SnapshotStore {
  return {
    async exists(ref) {
      return pointer ? (await pointer.get(ref)) > 0 : true;
    },
    async get(ref) {
      // Snapshots are small and rehydration waits on them: let the store take its fastest path
      // (the file store reads them synchronously; core/blob/file-store.ts has the trade-off).
      const bytes = await blobs.get(keyOf(ref), { small: true });
      if (!bytes) return null;
      try {
        const snap = JSON.parse(bytes.toString("utf8")) as Snapshot;
        if (typeof snap.version !== "number" || typeof snap.offset !== "string") return null;
        return snap;
      } catch {
        return null;
      }
    },
    async put(ref, snap) {
      await blobs.put(keyOf(ref), Buffer.from(JSON.stringify(snap)));
      await pointer?.set(ref, snap.version, snap.offset);
    },
  };
}

export interface SnapshotPointer {
  get(ref: StreamRef): Promise<number>;
  /** `offset` (the snapshot's last folded event) lets a reader start the tail read before the blob arrives. */
  set(ref: StreamRef, version: number, offset?: string): Promise<void>;
}

/**
 * The meta-hash field holding `<version>/<offset>` of the latest snapshot, beside `snap` (its
 * version alone, the field older code reads and writes). One field for both so they are always
 * written together; a reader uses it only when its version equals `snap` (an older worker may have
 * moved `snap` on without it) — and even then only as a hint, checked against what it reads.
 */
export const SNAPSHOT_AT_FIELD = "snapAt";

/** `<version>/<offset>` → its parts, or undefined when malformed. */
export function parseSnapshotAt(raw: string | null | undefined): { version: number; offset: string } | undefined {
  if (!raw) return undefined;
  const slash = raw.indexOf("/");
  const version = Number(raw.slice(0, slash));
  const offset = raw.slice(slash + 1);
  if (slash <= 0 || !Number.isSafeInteger(version) || version <= 0 || offset === "") return undefined;
  return { version, offset };
}

/** The pointer in the stream's meta hash (same `{pN}` slot as the stream). */
export function metaSnapshotPointer(redis: RedisClient, partitions: number): SnapshotPointer {
  return {
    async get(ref) {
      const v = await redis.hget(streamKeys(ref, partitions).meta, "snap");
      return v ? Number(v) : 0;
    },
    async set(ref, version, offset) {
      const meta = streamKeys(ref, partitions).meta;
      if (offset === undefined) await redis.hset(meta, "snap", String(version));
      else await redis.hset(meta, "snap", String(version), SNAPSHOT_AT_FIELD, `${version}/${offset}`);
    },
  };
}

/** For deployments and tests that want no snapshots. */
export const noSnapshots: SnapshotStore = {
  exists: async () => false,
  get: async () => null,
  put: async () => undefined,
};
