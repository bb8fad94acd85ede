import { join } from "node:path";
import type { Config } from "../config.js";
import type { BlobStore } from "./blob-store.js";
import { createFileBlobStore } from "./file-store.js";
import { loadOnFirstUse } from "./lazy-store.js";

export type BlobConfig = Pick<Config, "S3_BUCKET" | "S3_ENDPOINT" | "S3_REGION" | "S3_FORCE_PATH_STYLE" | "DATA_DIR">;

/**
 * CONTRACT §1: S3 when S3_BUCKET is set (credentials from the SDK's default chain: the usual
 * AWS_* variables, profiles or an instance role), files under DATA_DIR/blobs otherwise.
 */
export function createBlobStore(cfg: BlobConfig): BlobStore {
  if (cfg.S3_BUCKET) {
    const opts = {
      bucket: cfg.S3_BUCKET,
      region: cfg.S3_REGION,
      ...(cfg.S3_ENDPOINT ? { endpoint: cfg.S3_ENDPOINT } : {}),
      forcePathStyle: cfg.S3_FORCE_PATH_STYLE,
    };
    // The AWS SDK is loaded on the store's first call (core/blob/lazy-store.ts).
    return loadOnFirstUse("s3", `s3://${cfg.S3_BUCKET}/`, async () => (await import("./s3-store.js")).createS3BlobStore(opts));
  }
  return createFileBlobStore(join(cfg.DATA_DIR, "blobs"));
}
