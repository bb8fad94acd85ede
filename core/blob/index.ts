// The blob store's public surface (snapshots, archive segments).
export { checkBlobKey, checkBlobMeta, compareKeys, type BlobStore, type BlobInfo, type BlobEntry, type BlobGetOptions } from "./blob-store.js";
export { createFileBlobStore, DEFAULT_SYNC_READ_MAX_BYTES, type FileBlobStoreOptions } from "./file-store.js";
export { createS3BlobStore, type S3BlobStoreOptions } from "./s3-store.js";
export { createBlobStore, type BlobConfig } from "./create.js";
