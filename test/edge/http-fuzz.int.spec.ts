import { request } from "node:http";
import { connect } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../core/errors.js";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken } from "../support/tokens.js";

/**
 * The HTTP parser boundary under random input: whatever arrives, the process keeps running and every
 * answer is either a success of the contract or the contract's error body — never a 500, never a
 * hang, never a crash.
 */
let h: HttpEdgeHarness;
let token: string;
let conversationId: string;
beforeAll(async () => {
  h = await startHttpEdge({ gateway: { messageRates: { anonymous: 1e6, registered: 1e6, privileged: 1e6 } } });
  token = await mintToken();
  const r = await call(`${h.url}/v1/conversations`, { token, body: {} });
  conversationId = r.json.id;
});
afterAll(async () => {
  await h?.stop();
});

const CODES = new Set(Object.keys(ERROR_STATUS).filter((c) => c !== "INTERNAL"));
const OK = new Set([200, 201, 202]);

function assertContractAnswer(status: number, text: string, what: string): void {
  if (OK.has(status)) return;
  expect(status, what).not.toBe(500);
  let body: { error?: { code?: string; message?: string }; requestId?: string };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`${what}: status ${status} with a non-JSON body ${JSON.stringify(text.slice(0, 200))}`);
  }
  expect(CODES.has(body.error?.code ?? ""), `${what}: code ${body.error?.code}`).toBe(true);
  expect(ERROR_STATUS[body.error!.code as keyof typeof ERROR_STATUS], what).toBe(status);
  expect(typeof body.error?.message).toBe("string");
  expect(typeof body.requestId).toBe("string");
}

const paths = fc.oneof(
  fc.constantFrom("/v1/conversations", "/v1/quota", "/v1/spend", "/healthz", "/readyz", "/metrics"),
  fc.string({ maxLength: 40 }).map((s) => `/v1/conversations/${encodeURIComponent(s)}`),
  fc.string({ maxLength: 20 }).map((s) => `/v1/admin/quotas/${encodeURIComponent(s)}`),
  fc.constantFrom("messages", "cancel", "events?format=json", "").map((tail) => `/v1/conversations/__CONV__/${tail}`),
  fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
);
const queries = fc.oneof(
  fc.constant(""),
  fc.dictionary(fc.constantFrom("limit", "cursor", "from", "to", "groupBy", "format", "access_token"), fc.string({ maxLength: 20 })).map(
    (d) => `?${new URLSearchParams(d).toString()}`,
  ),
);
const contentTypes = fc.oneof(
  fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/merge-patch+json", "multipart/form-data"),
  fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
);
const bodies = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 300 }),
  fc.json({ maxDepth: 3 }),
  fc.record({ text: fc.string({ maxLength: 50 }), clientMessageId: fc.string({ maxLength: 70 }), maxTokens: fc.oneof(fc.integer(), fc.double(), fc.string()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ title: fc.oneof(fc.string({ maxLength: 250 }), fc.integer()), model: fc.string({ maxLength: 20 }) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString("latin1")),
);
const auths = fc.constantFrom("valid", "none", "garbage", "cookie");

describe("HTTP fuzzing", () => {
  it("random requests always get a contract answer", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
        paths,
        queries,
        contentTypes,
        bodies,
        auths,
        async (method, path, query, contentType, body, auth) => {
          const headers: Record<string, string> = { "content-type": contentType };
          if (auth === "valid") headers.authorization = `Bearer ${token}`;
          if (auth === "garbage") headers.authorization = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x";
          if (auth === "cookie") headers.cookie = `access_token=${token}`;
          const url = `${h.url}${path.replace("__CONV__", conversationId)}${query}`;
          const withBody = method !== "GET" && body !== undefined;
          const res = await fetch(url, { method, headers, ...(withBody ? { body } : {}) });
          assertContractAnswer(res.status, await res.text(), `${method} ${path}${query}`);
        },
      ),
      { numRuns: 300 },
    );
    expect((await call(`${h.url}/healthz`)).status).toBe(200);
  });

  it("raw garbage on the socket never takes the server down", async () => {
    const send = (bytes: Buffer) =>
      new Promise<string>((resolve) => {
        const s = connect(h.port, "127.0.0.1");
        let got = "";
        s.on("data", (d) => (got += d.toString("latin1")));
        s.on("error", () => resolve(got));
        s.on("close", () => resolve(got));
        s.write(bytes, () => s.end());
        s.setTimeout(2000, () => s.destroy());
      });
    const line = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.constantFrom("GET", "POST", "PUT", "BREW"), line, fc.array(fc.tuple(line, line), { maxLength: 6 }), line).map(([m, p, hs, b]) =>
            Buffer.from(`${m} /${p} HTTP/1.1\r\nHost: x\r\n${hs.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\ncontent-type: application/json\r\ncontent-length: ${b.length}\r\n\r\n${b}`, "latin1"),
          ),
        ),
        async (bytes) => {
          const answer = await send(bytes);
          const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
          if (m) expect(m[1]).not.toBe("500");
        },
      ),
      { numRuns: 150 },
    );
    expect((await call(`${h.url}/healthz`)).status).toBe(200);
  });

  it("chunked bodies: any split of a body within the limit parses; any body over it is a 413", async () => {
    const post = (chunks: string[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port: h.port, method: "POST", path: "/v1/conversations", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" } },
          (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("error", (e) => reject(e));
        for (const c of chunks) if (c.length > 0) req.write(c);
        req.end();
      });
    const split = (text: string, cuts: number[]): string[] => {
      const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const out: string[] = [];
      let prev = 0;
      for (const p of points) {
        out.push(text.slice(prev, p));
        prev = p;
      }
      out.push(text.slice(prev));
      return out;
    };
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 150 }).filter((t) => t.trim().length > 0), fc.array(fc.nat(), { maxLength: 8 }), async (title, cuts) => {
        const text = JSON.stringify({ title });
        const r = await post(split(text, cuts));
        if (Buffer.byteLength(text) > h.config.MAX_BODY_BYTES) {
          expect(r.status).toBe(413);
        } else {
          expect(r.status, r.body).toBe(201);
          expect((JSON.parse(r.body) as { title: string }).title).toBe(title.trim());
        }
      }),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: h.config.MAX_BODY_BYTES + 1, max: 8 * h.config.MAX_BODY_BYTES }), fc.array(fc.nat(), { maxLength: 8 }), async (size, cuts) => {
        const text = JSON.stringify({ title: "x".repeat(size) });
        // The server answers 413 mid-stream and closes; the client may see the reset before the answer.
        const r = await post(split(text, cuts)).catch((e: NodeJS.ErrnoException) => {
          if (e.code === "ECONNRESET" || e.code === "EPIPE") return { status: 413, body: "" };
          throw e;
        });
        expect(r.status).toBe(413);
      }),
      { numRuns: 20 },
    );
    expect((await call(`${h.url}/healthz`)).status).toBe(200);
  });
});
