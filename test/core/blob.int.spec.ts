import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { BlobStore } from "../../core/blob/blob-store.js";
import { createBlobStore } from "../../core/blob/create.js";
import { createFileBlobStore } from "../../core/blob/file-store.js";
import { createS3BlobStore } from "../../core/blob/s3-store.js";
import { DependencyError, TributaryError } from "../../core/errors.js";
import { S3_ENDPOINT, S3_REGION, testS3Bucket, type TestS3 } from "../support/s3.js";

/** One suite, two backends: the real S3 server (radosgw) and the file store. */
interface Backend {
  name: string;
  open(): Promise<{ store: BlobStore; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "s3",
    async open() {
      const s3: TestS3 = await testS3Bucket();
      return { store: s3.store, cleanup: () => s3.cleanup() };
    },
  },
  {
    name: "file",
    async open() {
      const dir = await mkdtemp(join(tmpdir(), "tributary-blob-"));
      const store = createFileBlobStore(dir);
      return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

describe.each(backends)("blob store ($name)", (backend) => {
  let store: BlobStore;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ store, cleanup } = await backend.open());
  });
  afterAll(() => cleanup());

  it("answers null for a missing key on get and head; delete of a missing key is fine", async () => {
    expect(await store.get("missing/x")).toBeNull();
    expect(await store.head("missing/x")).toBeNull();
    await store.delete("missing/x");
  });

  it("round-trips bytes exactly, with metadata", async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 0xff));
    await store.put("rt/a.bin", bytes, { sha256: "abc", "first-version": "1" });
    const got = await store.get("rt/a.bin");
    expect(got).not.toBeNull();
    expect(Buffer.compare(got as Buffer, bytes)).toBe(0);
    const h = await store.head("rt/a.bin");
    expect(h?.size).toBe(bytes.length);
    expect(h?.meta).toEqual({ sha256: "abc", "first-version": "1" });
  });

  it("stores empty objects", async () => {
    await store.put("rt/empty", new Uint8Array(0));
    expect((await store.get("rt/empty"))?.length).toBe(0);
    expect((await store.head("rt/empty"))?.size).toBe(0);
  });

  it("overwrites: the latest put wins, metadata included", async () => {
    await store.put("ow/k", Buffer.from("one"), { v: "1" });
    await store.put("ow/k", Buffer.from("second"));
    expect((await store.get("ow/k"))?.toString()).toBe("second");
    expect((await store.head("ow/k"))?.meta).toEqual({});
  });

  it("lists by string prefix in byte order, across folders", async () => {
    const keys = ["ls/b/2", "ls/a/10", "ls/a/09", "ls/ab", "lsx/other"];
    for (const k of keys) await store.put(k, Buffer.from(k));
    expect((await store.list("ls/")).map((e) => e.key)).toEqual(["ls/a/09", "ls/a/10", "ls/ab", "ls/b/2"]);
    expect((await store.list("ls/a")).map((e) => e.key)).toEqual(["ls/a/09", "ls/a/10", "ls/ab"]);
    expect((await store.list("ls/a/")).map((e) => e.key)).toEqual(["ls/a/09", "ls/a/10"]);
    expect((await store.list("ls/b/2")).map((e) => ({ ...e }))).toEqual([{ key: "ls/b/2", size: 6 }]);
    expect(await store.list("nothing-here/")).toEqual([]);
  });

  it("deletes", async () => {
    await store.put("del/x", Buffer.from("x"), { a: "b" });
    await store.delete("del/x");
    expect(await store.get("del/x")).toBeNull();
    expect(await store.list("del/")).toEqual([]);
  });

  it("lists more than one page", async () => {
    // radosgw pages ListObjectsV2 at 1000 keys; the file store has no pages but must agree.
    const n = 1005;
    const pad = (i: number) => String(i).padStart(5, "0");
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      batch.push(store.put(`many/${pad(i)}`, Buffer.from([i & 0xff])));
      if (batch.length === 50) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    const listed = await store.list("many/");
    expect(listed.length).toBe(n);
    expect(listed[0]?.key).toBe("many/00000");
    expect(listed[n - 1]?.key).toBe(`many/${pad(n - 1)}`);
  });

  it("rejects unsafe keys and metadata", async () => {
    for (const bad of ["", "../x", "a/../b", "a//b", "/abs", ".tmp/x", "a/.meta/b", "a\\b", "a/"]) {
      await expect(store.put(bad, Buffer.from("x")), bad).rejects.toBeInstanceOf(TributaryError);
    }
    await expect(store.put("ok", Buffer.from("x"), { "Bad Name": "v" })).rejects.toBeInstanceOf(TributaryError);
    await expect(store.put("ok", Buffer.from("x"), { good: "ünïcode" })).rejects.toBeInstanceOf(TributaryError);
  });

  it("passes its readiness check", async () => {
    await store.check();
  });
});

describe("file store atomic writes", () => {
  it("leaves no temp files behind and never exposes a partial object", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tributary-blob-"));
    try {
      const store = createFileBlobStore(dir);
      const a = Buffer.alloc(256 * 1024, 1);
      const b = Buffer.alloc(300 * 1024, 2);
      // Concurrent overwrites: every read sees one whole version.
      const writes = Array.from({ length: 10 }, (_, i) => store.put("same/key", i % 2 ? a : b));
      const reads = Array.from({ length: 10 }, () => store.get("same/key"));
      await Promise.all(writes);
      for (const r of await Promise.all(reads)) {
        if (r === null) continue;
        expect(r.equals(a) || r.equals(b)).toBe(true);
      }
      expect(await readdir(join(dir, ".tmp"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("file store: small objects read synchronously (get with small: true)", () => {
  let dir: string;
  let store: BlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tributary-blob-small-"));
    store = createFileBlobStore(dir, { syncReadMaxBytes: 1000 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("answers the same bytes as a plain get, below, at and above the bound, and null when missing", async () => {
    for (const size of [0, 1, 999, 1000, 1001, 70_000]) {
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 17 + size) & 0xff));
      await store.put(`small/${size}.bin`, bytes);
      const small = await store.get(`small/${size}.bin`, { small: true });
      expect(Buffer.compare(small as Buffer, bytes)).toBe(0);
      expect(Buffer.compare(small as Buffer, (await store.get(`small/${size}.bin`)) as Buffer)).toBe(0);
    }
    expect(await store.get("small/missing.bin", { small: true })).toBeNull();
  });

  it("answers a small object without waiting for an event-loop turn (readFile needs several)", async () => {
    await store.put("small/turn.json", Buffer.from('{"v":1}'));
    const turns = async (opts?: { small: boolean }) => {
      let turned = false;
      setImmediate(() => (turned = true));
      const got = await store.get("small/turn.json", opts);
      expect(got?.toString()).toBe('{"v":1}');
      return turned;
    };
    expect(await turns({ small: true })).toBe(false);
    expect(await turns()).toBe(true);
  });

  it("fails a key that is a folder the same way with or without the hint", async () => {
    await store.put("folder/inside", Buffer.from("x"));
    await expect(store.get("folder")).rejects.toBeInstanceOf(DependencyError);
    await expect(store.get("folder", { small: true })).rejects.toBeInstanceOf(DependencyError);
  });
});

describe("createBlobStore", () => {
  it("uses files under DATA_DIR/blobs without S3_BUCKET", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tributary-blob-"));
    try {
      const store = createBlobStore({ DATA_DIR: dir, S3_REGION: "us-east-1", S3_FORCE_PATH_STYLE: false });
      expect(store.kind).toBe("file");
      await store.put("x/y", Buffer.from("z"));
      expect(await readdir(join(dir, "blobs", "x"))).toEqual(["y"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("uses S3 with S3_BUCKET", () => {
    const store = createBlobStore({ DATA_DIR: "/nonexistent", S3_BUCKET: "b", S3_REGION: "us-east-1", S3_FORCE_PATH_STYLE: true, S3_ENDPOINT: "http://127.0.0.1:7480" });
    expect(store.kind).toBe("s3");
    expect(store.location).toBe("s3://b/");
  });

  it("with S3_BUCKET, loads the S3 store on first use and serves every operation through it", async () => {
    const s3 = await testS3Bucket();
    vi.stubEnv("AWS_ACCESS_KEY_ID", s3.env.AWS_ACCESS_KEY_ID as string);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", s3.env.AWS_SECRET_ACCESS_KEY as string);
    const store = createBlobStore({ DATA_DIR: "/nonexistent", S3_BUCKET: s3.bucket, S3_REGION: S3_REGION, S3_FORCE_PATH_STYLE: true, S3_ENDPOINT: S3_ENDPOINT });
    try {
      await store.check();
      await store.put("lazy/a", Buffer.from("one"), { k: "v" });
      expect((await store.get("lazy/a", { small: true }))?.toString()).toBe("one");
      expect((await store.head("lazy/a"))?.meta).toEqual({ k: "v" });
      expect((await store.list("lazy/")).map((e) => e.key)).toEqual(["lazy/a"]);
      await store.delete("lazy/a");
      expect(await store.get("lazy/a")).toBeNull();
    } finally {
      await store.close();
      vi.unstubAllEnvs();
      await s3.cleanup();
    }
  });

  it("closing a lazily loaded store that was never used loads nothing and succeeds", async () => {
    const store = createBlobStore({ DATA_DIR: "/nonexistent", S3_BUCKET: "b", S3_REGION: "us-east-1", S3_FORCE_PATH_STYLE: true, S3_ENDPOINT: "http://127.0.0.1:1" });
    await expect(store.close()).resolves.toBeUndefined();
  });

  it("reports an unreachable S3 server as a DependencyError", async () => {
    const store = createS3BlobStore({
      bucket: "nope",
      region: "us-east-1",
      endpoint: "http://127.0.0.1:1",
      forcePathStyle: true,
      credentials: { accessKeyId: "x", secretAccessKey: "y" },
    });
    try {
      await expect(store.get("a")).rejects.toBeInstanceOf(DependencyError);
      await expect(store.check()).rejects.toBeInstanceOf(DependencyError);
    } finally {
      await store.close();
    }
  });
});
