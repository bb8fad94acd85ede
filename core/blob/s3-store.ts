import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { DependencyError, errorMessage } from "../errors.js";
import { checkBlobKey, checkBlobMeta, checkBlobPrefix, compareKeys, type BlobEntry, type BlobStore } from "./blob-store.js";

export interface S3BlobStoreOptions {
  bucket: string;
  region: string;
  /** S3_ENDPOINT: an S3-compatible server (radosgw, MinIO); unset = AWS. */
  endpoint?: string;
  /** S3_FORCE_PATH_STYLE: `http://host/bucket/key` instead of `http://bucket.host/key`. */
  forcePathStyle?: boolean;
  /** Unset: the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Every key is stored under this prefix (e.g. "tributary/"), so one bucket can serve several deployments. */
  keyPrefix?: string;
}

/** HTTP status of an SDK service error, if it is one. */
function statusOf(e: unknown): number | undefined {
  const md = (e as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata;
  return typeof md?.httpStatusCode === "number" ? md.httpStatusCode : undefined;
}

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name === "NoSuchKey" || name === "NotFound" || statusOf(e) === 404;
}

const stripQuotes = (etag: string | undefined): string | undefined => (etag ? etag.replace(/^"|"$/g, "") : undefined);

/**
 * The blob store on S3 through @aws-sdk/client-s3. Checksums are computed and validated only when
 * an operation requires them ("WHEN_REQUIRED"): the SDK's newer default (CRC32 trailers on every
 * PUT and GET) is not understood by every S3-compatible server, and our own objects carry a
 * sha256 where integrity matters (archive segments). PutObject is atomic for the object; objects
 * are small (segments are capped), so no multipart upload is needed.
 */
export function createS3BlobStore(opts: S3BlobStoreOptions): BlobStore {
  const client = new S3Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle ?? false,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
  });
  const Bucket = opts.bucket;
  const pre = opts.keyPrefix ?? "";
  const where = `s3://${Bucket}/${pre}`;

  const fail = (op: string, key: string, e: unknown): never => {
    throw new DependencyError("blob store", `${op} ${where}${key}: ${errorMessage(e)}${statusOf(e) ? ` (HTTP ${statusOf(e)})` : ""}`, e);
  };

  async function head(key: string) {
    checkBlobKey(key);
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket, Key: pre + key }));
      const etag = stripQuotes(r.ETag);
      return {
        key,
        size: r.ContentLength ?? 0,
        ...(etag ? { etag } : {}),
        meta: { ...(r.Metadata ?? {}) },
        ...(r.LastModified ? { modifiedAt: r.LastModified } : {}),
      };
    } catch (e) {
      if (isNotFound(e)) return null;
      return fail("head", key, e);
    }
  }

  return {
    kind: "s3",
    location: where,

    async put(key, bytes, meta) {
      checkBlobKey(key);
      const Metadata = checkBlobMeta(meta);
      try {
        const r = await client.send(
          new PutObjectCommand({ Bucket, Key: pre + key, Body: bytes, ContentLength: bytes.byteLength, ContentType: "application/octet-stream", Metadata }),
        );
        const etag = stripQuotes(r.ETag);
        if (etag) return { etag };
      } catch (e) {
        fail("put", key, e);
      }
      // Some servers (radosgw after a multipart completion) answer without an ETag; HEAD has it.
      const h = await head(key);
      return h?.etag ? { etag: h.etag } : {};
    },

    async get(key) {
      checkBlobKey(key);
      try {
        const r = await client.send(new GetObjectCommand({ Bucket, Key: pre + key }));
        if (!r.Body) return Buffer.alloc(0);
        return Buffer.from(await r.Body.transformToByteArray());
      } catch (e) {
        if (isNotFound(e)) return null;
        return fail("get", key, e);
      }
    },

    head,

    async list(prefix) {
      checkBlobPrefix(prefix);
      const out: BlobEntry[] = [];
      let token: string | undefined;
      try {
        do {
          const r = await client.send(
            new ListObjectsV2Command({ Bucket, Prefix: pre + prefix, ...(token ? { ContinuationToken: token } : {}) }),
          );
          for (const o of r.Contents ?? []) {
            if (o.Key === undefined) continue;
            out.push({ key: o.Key.slice(pre.length), size: o.Size ?? 0 });
          }
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
      } catch (e) {
        fail("list", prefix, e);
      }
      // S3 already lists in byte order; sorting keeps both stores identical whatever the server does.
      return out.sort((a, b) => compareKeys(a.key, b.key));
    },

    async delete(key) {
      checkBlobKey(key);
      try {
        await client.send(new DeleteObjectCommand({ Bucket, Key: pre + key }));
      } catch (e) {
        if (isNotFound(e)) return;
        fail("delete", key, e);
      }
    },

    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (e) {
        fail("open bucket", "", e);
      }
    },

    async close() {
      client.destroy();
    },
  };
}
