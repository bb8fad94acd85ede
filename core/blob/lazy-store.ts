import type { BlobStore } from "./blob-store.js";

/**
 * A blob store whose implementation is loaded on its first call. The S3 store pulls in the AWS SDK,
 * several megabytes of modules and heap that every process importing the blob store would otherwise
 * pay at start-up, whether or not S3 is configured (an edge never touches snapshots).
 */
export function loadOnFirstUse(kind: BlobStore["kind"], location: string, load: () => Promise<BlobStore>): BlobStore {
  let loaded: Promise<BlobStore> | undefined;
  const store = (): Promise<BlobStore> => (loaded ??= load());
  return {
    kind,
    location,
    put: async (key, bytes, meta) => (await store()).put(key, bytes, meta),
    get: async (key, opts) => (await store()).get(key, opts),
    head: async (key) => (await store()).head(key),
    list: async (prefix) => (await store()).list(prefix),
    delete: async (key) => (await store()).delete(key),
    check: async () => (await store()).check(),
    // Closing a store that was never used loads nothing.
    close: async () => {
      if (loaded) await (await loaded).close();
    },
  };
}
