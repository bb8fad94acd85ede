import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/auth/index.js";

/** A real JWKS endpoint on loopback: the authenticator fetches it once and caches the key set. */
let server: Server;
let url: string;
let fetches = 0;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("JWKS", () => {
  it("verifies tokens against a remote key set, fetched once and cached", async () => {
    const auth = createAuthenticator({ jwksUrl: url, issuer: "https://id.test" });
    const now = Math.floor(Date.now() / 1000);
    const sign = (sub: string) =>
      new SignJWT({ tid: "t", tier: "registered", roles: [] })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setSubject(sub)
        .setIssuer("https://id.test")
        .setExpirationTime(now + 60)
        .sign(privateKey);
    expect((await auth.verify(await sign("a"))).userId).toBe("a");
    expect((await auth.verify(await sign("b"))).userId).toBe("b");
    expect(fetches).toBe(1);
    await expect(auth.verify(await new SignJWT({ tid: "t", tier: "registered" }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setSubject("c").setExpirationTime(now + 60).sign(privateKey))).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
  });
});
