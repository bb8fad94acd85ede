import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import {
  authenticatorFromConfig,
  bearerToken,
  cookieToken,
  createAuthenticator,
  findToken,
  handshakeToken,
  loadOrCreateDevSecret,
  queryToken,
  resolveJwtSecret,
} from "../../edge/auth/index.js";
import { loadConfig } from "../../core/config.js";
import { mintToken, TEST_JWT_SECRET, testAuthenticator } from "../support/tokens.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function rejects(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TributaryError);
  expect((e as TributaryError).code).toBe("UNAUTHENTICATED");
  if (message) expect((e as TributaryError).message).toMatch(message);
}

describe("token sources", () => {
  it("bearer: scheme case-insensitive, nothing else", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer   abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it("cookies: __Secure-LATC before access_token, other cookies ignored", () => {
    expect(cookieToken("a=1; access_token=t2; __Secure-LATC=t1")).toBe("t1");
    expect(cookieToken("a=1; access_token=t2")).toBe("t2");
    expect(cookieToken("a=1")).toBeUndefined();
    expect(cookieToken("access_token=%7Bx%7D")).toBe("{x}");
    expect(cookieToken("=;;;access_token")).toBeUndefined();
  });

  it("query and handshake", () => {
    expect(queryToken("from=0&access_token=q")).toBe("q");
    expect(queryToken("?access_token=q")).toBe("q");
    expect(queryToken("access_token=")).toBeUndefined();
    expect(handshakeToken({ token: "h" })).toBe("h");
    expect(handshakeToken({ token: 5 })).toBeUndefined();
    expect(handshakeToken(null)).toBeUndefined();
  });

  it("findToken follows the contract order and uses the query only when allowed", () => {
    const all = { authorization: "Bearer a", cookie: "access_token=c", query: "access_token=q", handshakeAuth: { token: "h" } };
    expect(findToken(all)).toBe("a");
    expect(findToken({ ...all, authorization: undefined })).toBe("c");
    expect(findToken({ query: "access_token=q", handshakeAuth: { token: "h" } })).toBe("h");
    expect(findToken({ query: "access_token=q", handshakeAuth: { token: "h" } }, { allowQuery: true })).toBe("q");
  });

  it("never throws on arbitrary header text", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (a, c, q) => {
        const t = findToken({ authorization: a, cookie: c, query: q }, { allowQuery: true });
        expect(t === undefined || typeof t === "string").toBe(true);
      }),
    );
  });
});

describe("HS256 verification", () => {
  const auth = testAuthenticator();

  it("accepts a valid token and maps claims to a principal", async () => {
    const token = await mintToken({ sub: "u1", tid: "t1", pid: "p1", tier: "privileged", roles: ["auditor"] });
    const p = await auth.verify(token);
    expect(p).toMatchObject({ userId: "u1", tenantId: "t1", projectId: "p1", tier: "privileged", roles: ["auditor"] });
  });

  it("refuses missing, expired, forged, malformed and alg=none tokens with UNAUTHENTICATED", async () => {
    await rejects(auth.verify(undefined), /no token/);
    await rejects(auth.verify(await mintToken({ ttlSeconds: -1 })), /expired/);
    await rejects(auth.verify(await mintToken({ secret: "another-secret-that-is-long" })));
    await rejects(auth.verify("a.b.c"), /malformed/);
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"u","tid":"t","tier":"registered","exp":9999999999}').toString("base64url")}.`;
    await rejects(auth.verify(none), /not accepted/);
    await rejects(auth.verify("x".repeat(10_000)), /too long/);
  });

  it("refuses tokens whose claims break the schema", async () => {
    const key = new TextEncoder().encode(TEST_JWT_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const bad = await new SignJWT({ tid: "t1", tier: "gold" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime(now + 60).sign(key);
    await rejects(auth.verify(bad), /tier/);
    const noTenant = await new SignJWT({ tier: "registered" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime(now + 60).sign(key);
    await rejects(auth.verify(noTenant), /tid/);
    const noExp = await new SignJWT({ tid: "t", tier: "registered" }).setProtectedHeader({ alg: "HS256" }).setSubject("u").sign(key);
    await rejects(auth.verify(noExp), /exp/);
  });

  it("checks issuer and audience when configured", async () => {
    const strict = testAuthenticator({ issuer: "https://id.example", audience: "tributary" });
    await rejects(strict.verify(await mintToken()), /iss|aud/);
    const good = await mintToken({ issuer: "https://id.example", audience: "tributary" });
    expect((await strict.verify(good)).userId).toMatch(/^u-/);
    await rejects(strict.verify(await mintToken({ issuer: "https://id.example", audience: "other" })), /aud/);
  });

  it("random strings never verify and never throw anything but UNAUTHENTICATED", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (s) => {
        await rejects(auth.verify(s));
      }),
      { numRuns: 200 },
    );
  });
});

describe("asymmetric keys", () => {
  it("verifies RS256 against a PEM public key (also with escaped newlines) and refuses HS256 then", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ tid: "t", tier: "registered" }).setProtectedHeader({ alg: "RS256" }).setSubject("u").setExpirationTime(now + 60).sign(privateKey);
    for (const key of [pem, pem.replace(/\n/g, "\\n")]) {
      const auth = createAuthenticator({ publicKey: key });
      expect((await auth.verify(token)).userId).toBe("u");
      await rejects(auth.verify(await mintToken()), /HS256/);
    }
  });

  it("verifies ES256 against a JWK public key", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), alg: "ES256" };
    const auth = createAuthenticator({ publicKey: JSON.stringify(jwk) });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ tid: "t", tier: "anonymous" }).setProtectedHeader({ alg: "ES256" }).setSubject("u").setExpirationTime(now + 60).sign(privateKey);
    expect((await auth.verify(token)).tier).toBe("anonymous");
    expect(await exportSPKI(publicKey)).toContain("BEGIN PUBLIC KEY");
  });
});

describe("dev secret", () => {
  it("is created once (0600) on loopback and shared by every reader", () => {
    const dir = mkdtempSync(join(tmpdir(), "trib-dev-"));
    dirs.push(dir);
    const a = loadOrCreateDevSecret(join(dir, "data"));
    const b = loadOrCreateDevSecret(join(dir, "data"));
    expect(a).toBe(b);
    expect(a.length).toBeGreaterThanOrEqual(32);
    expect(statSync(join(dir, "data", "dev-secret")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, "data", "dev-secret"), "utf8").trim()).toBe(a);
  });

  it("is used only on loopback and only when AUTH_JWT_SECRET is unset", () => {
    const dir = mkdtempSync(join(tmpdir(), "trib-dev-"));
    dirs.push(dir);
    expect(resolveJwtSecret({ HOST: "127.0.0.1", DATA_DIR: dir, AUTH_JWT_SECRET: undefined })).toBeDefined();
    expect(resolveJwtSecret({ HOST: "0.0.0.0", DATA_DIR: dir, AUTH_JWT_SECRET: undefined })).toBeUndefined();
    expect(resolveJwtSecret({ HOST: "0.0.0.0", DATA_DIR: dir, AUTH_JWT_SECRET: "s".repeat(16) })).toBe("s".repeat(16));
    expect(() => authenticatorFromConfig(loadConfig({ HOST: "0.0.0.0", DATA_DIR: dir }))).toThrow(/AUTH_JWT_SECRET/);
  });
});
