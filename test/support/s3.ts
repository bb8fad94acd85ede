import { randomUUID } from "node:crypto";
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { BlobStore } from "../../core/blob/blob-store.js";
import { createS3BlobStore } from "../../core/blob/s3-store.js";

/**
 * A random bucket on the test S3 server (Ceph radosgw, test/services/s3-up.sh) per test file, so
 * tests never share objects. `cleanup()` empties and deletes only that bucket.
 *
 *   const s3 = await testS3Bucket();
 *   afterAll(() => s3.cleanup());
 *   await s3.store.put("a/b", bytes);
 */
export const S3_ENDPOINT = process.env.TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480";
export const S3_CREDENTIALS = {
  accessKeyId: process.env.TEST_S3_ACCESS_KEY ?? "test",
  secretAccessKey: process.env.TEST_S3_SECRET_KEY ?? "testsecret",
};
export const S3_REGION = "us-east-1";

export interface TestS3 {
  bucket: string;
  store: BlobStore;
  client: S3Client;
  /** Environment for a child process (CLI e2e tests) using this bucket. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export function rawS3Client(): S3Client {
  return new S3Client({
    region: S3_REGION,
    endpoint: S3_ENDPOINT,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export async function testS3Bucket(): Promise<TestS3> {
  const bucket = `t-${randomUUID().replace(/-/g, "").slice(0, 24)}`;
  const client = rawS3Client();
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = createS3BlobStore({ bucket, region: S3_REGION, endpoint: S3_ENDPOINT, forcePathStyle: true, credentials: S3_CREDENTIALS });
  return {
    bucket,
    store,
    client,
    env: {
      S3_BUCKET: bucket,
      S3_ENDPOINT,
      S3_REGION,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    },
    async cleanup() {
      try {
        let token: string | undefined;
        do {
          const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
          const objs = (r.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
          if (objs.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objs } }));
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        await store.close();
        client.destroy();
      }
    },
  };
}
