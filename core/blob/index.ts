// The blob store's public surface (snapshots, archive segments).
export { checkBlobKey, checkBlobMeta, compareKeys, type BlobStore, type BlobInfo, type BlobEntry } from "./blob-store.js";
export { createFileBlobStore } from "./file-store.js";
export { createS3BlobStore, type S3BlobStoreOptions } from "./s3-store.js";
export { createBlobStore, type BlobConfig } from "./create.js";
