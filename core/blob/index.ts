// The blob store's public surface (snapshots, archive segments).
export { checkBlobKey, checkBlobMeta, compareKeys, type BlobStore, type BlobInfo, type BlobEntry, type BlobGetOptions } from "./blob-store.js";
export { createFileBlobStore, DEFAULT_SYNC_READ_MAX_BYTES, type FileBlobStoreOptions } from "./file-store.js";
// createS3BlobStore is imported from ./s3-store.js directly: re-exporting it here would load the AWS SDK
// in every process that imports the blob store (createBlobStore loads it on first use instead).
export type { S3BlobStoreOptions } from "./s3-store.js";
export { createBlobStore, type BlobConfig } from "./create.js";
