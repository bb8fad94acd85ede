import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { DependencyError, errorMessage } from "../errors.js";
import { checkBlobKey, checkBlobMeta, checkBlobPrefix, compareKeys, type BlobEntry, type BlobInfo, type BlobStore } from "./blob-store.js";

export interface FileBlobStoreOptions {
  /**
   * `get(key, {small: true})` reads objects up to this size synchronously [256 KiB; 0 = never].
   * See `readSmallSync` for why and what it costs.
   */
  syncReadMaxBytes?: number;
}

/** Default bound of a synchronous read: a snapshot of a long conversation stays under it. */
export const DEFAULT_SYNC_READ_MAX_BYTES = 256 * 1024;

/**
 * Blobs as files under one directory (DATA_DIR/blobs), for single-node deployments and tests.
 *
 * Layout: `<root>/<key>` holds the bytes; `<root>/.meta/<key>.json` the user metadata (only when
 * some was given); `<root>/.tmp/` the files being written. Keys never have a segment starting with
 * `.` (checkBlobKey), so neither folder can collide with a key and `list` skips both.
 *
 * Atomicity: write to a temp file in the same filesystem, fsync it, rename it over the target and
 * fsync the directory — after a crash the key holds the old bytes or the new ones, never a torn
 * file. The metadata file is written the same way but is a separate rename, so on an overwrite a
 * crash between the two can leave new bytes with the old metadata; callers keep anything that must
 * match the bytes inside the bytes (archive segments carry their own manifest in the index).
 */
export function createFileBlobStore(root: string, opts: FileBlobStoreOptions = {}): BlobStore {
  const base = resolve(root);
  const syncReadMax = opts.syncReadMaxBytes ?? DEFAULT_SYNC_READ_MAX_BYTES;
  const tmpDir = join(base, ".tmp");
  const metaDir = join(base, ".meta");

  const pathOf = (key: string): string => {
    checkBlobKey(key);
    const p = join(base, ...key.split("/"));
    // Belt and braces after checkBlobKey: never leave the root.
    if (!p.startsWith(base + sep)) throw new DependencyError("blob store", `key escapes the root: ${key}`);
    return p;
  };
  const metaPathOf = (key: string): string => join(metaDir, ...key.split("/")) + ".json";

  const fail = (op: string, key: string, e: unknown): never => {
    throw new DependencyError("blob store", `${op} ${key} in ${base}: ${errorMessage(e)}`, e);
  };

  async function fsyncDir(dir: string): Promise<void> {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async function writeAtomic(target: string, bytes: Uint8Array): Promise<void> {
    await mkdir(tmpDir, { recursive: true });
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(tmpDir, `${randomBytes(8).toString("hex")}.tmp`);
    const fh = await open(tmp, "w", 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fh.close();
    try {
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    // The rename is only durable once the directory entry is on disk.
    await fsyncDir(dirname(target));
  }

  const isMissing = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === "ENOENT";

  /**
   * A small file read synchronously: the bytes, null when missing, or undefined when it is larger
   * than `syncReadMax` (the caller then reads it asynchronously).
   *
   * Why: `readFile` is open, fstat, read and close, each a thread-pool job and an event-loop wake-up.
   * On a busy machine every wake-up can wait for the scheduler, and that — not the bytes — was the
   * p99 of rehydrating an actor from its snapshot (docs/actors.md, "Snapshot reads"). Read
   * synchronously, a snapshot in the page cache costs tens of microseconds and no wake-up.
   * The price: the event loop is blocked for the duration of the read, so on a cold page cache (the
   * first load after a reboot, or a file evicted under memory pressure) every other actor of this
   * worker waits for the disk — one read of at most `syncReadMax` bytes, i.e. ≤ ~1 ms on an SSD.
   * Only callers that ask (`small: true`: snapshots) take that trade; archive segments (MBs) are
   * never read this way, and a file over the bound falls back after one fstat.
   * Writes are a rename of a complete temp file (writeAtomic), so the inode we opened never changes
   * under us: reading `size` bytes of it is the whole object.
   */
  function readSmallSync(p: string): Buffer | null | undefined {
    let fd: number;
    try {
      fd = openSync(p, "r");
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    try {
      const st = fstatSync(fd);
      // Not a regular file, or too big: let readFile answer (the same error or bytes as ever).
      if (!st.isFile() || st.size > syncReadMax) return undefined;
      const buf = Buffer.allocUnsafe(st.size);
      let off = 0;
      while (off < st.size) {
        const n = readSync(fd, buf, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
      return off === st.size ? buf : buf.subarray(0, off);
    } finally {
      closeSync(fd);
    }
  }

  async function readMeta(key: string): Promise<Record<string, string>> {
    try {
      const parsed: unknown = JSON.parse(await readFile(metaPathOf(key), "utf8"));
      if (typeof parsed !== "object" || parsed === null) return {};
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(parsed)) if (typeof v === "string") out[k] = v;
      return out;
    } catch (e) {
      if (isMissing(e)) return {};
      throw e;
    }
  }

  async function walk(dir: string, rel: string, prefix: string, out: BlobEntry[]): Promise<void> {
    let names;
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    for (const d of names) {
      if (d.name.startsWith(".")) continue;
      const key = rel === "" ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) {
        // Only descend where keys with this prefix can be.
        if (key.startsWith(prefix) || prefix.startsWith(key + "/")) await walk(join(dir, d.name), key, prefix, out);
      } else if (d.isFile() && key.startsWith(prefix)) {
        const st = await stat(join(dir, d.name));
        out.push({ key, size: st.size });
      }
    }
  }

  return {
    kind: "file",
    location: base,

    async put(key, bytes, meta) {
      const target = pathOf(key);
      const m = checkBlobMeta(meta);
      try {
        await writeAtomic(target, bytes);
        if (Object.keys(m).length > 0) await writeAtomic(metaPathOf(key), Buffer.from(JSON.stringify(m)));
        else await unlink(metaPathOf(key)).catch((e: unknown) => (isMissing(e) ? undefined : Promise.reject(e)));
      } catch (e) {
        fail("put", key, e);
      }
      return {};
    },

    async get(key, getOpts) {
      const p = pathOf(key);
      try {
        if (getOpts?.small && syncReadMax > 0) {
          const small = readSmallSync(p);
          if (small !== undefined) return small;
        }
        return await readFile(p);
      } catch (e) {
        if (isMissing(e)) return null;
        return fail("get", key, e);
      }
    },

    async head(key): Promise<BlobInfo | null> {
      const p = pathOf(key);
      try {
        const st = await stat(p);
        if (!st.isFile()) return null;
        return { key, size: st.size, meta: await readMeta(key), modifiedAt: st.mtime };
      } catch (e) {
        if (isMissing(e)) return null;
        return fail("head", key, e);
      }
    },

    async list(prefix) {
      checkBlobPrefix(prefix);
      const out: BlobEntry[] = [];
      // Start at the deepest folder the prefix names; the rest is filtered by name.
      const slash = prefix.lastIndexOf("/");
      const folder = slash < 0 ? "" : prefix.slice(0, slash);
      try {
        await walk(folder === "" ? base : join(base, ...folder.split("/")), folder, prefix, out);
      } catch (e) {
        fail("list", prefix, e);
      }
      return out.sort((a, b) => compareKeys(a.key, b.key));
    },

    async delete(key) {
      const p = pathOf(key);
      try {
        await rm(p, { force: true });
        await rm(metaPathOf(key), { force: true });
      } catch (e) {
        fail("delete", key, e);
      }
    },

    async check() {
      try {
        await mkdir(tmpDir, { recursive: true });
      } catch (e) {
        fail("open", base, e);
      }
    },

    async close() {
      /* nothing held open between calls */
    },
  };
}
