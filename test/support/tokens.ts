import { randomUUID } from "node:crypto";
import { createAuthenticator, type Authenticator } from "../../edge/auth/verifier.js";
import { signToken } from "../../edge/auth/sign.js";
import type { Tier } from "../../edge/auth/principal.js";

/**
 * Test JWTs. Every suite shares this HS256 secret; isolation comes from random user and tenant ids
 * (`randomIdentity()`), never from different secrets.
 *
 *   const token = await mintToken({ sub: "u1", tid: "t1" });
 *   const auth = testAuthenticator();     // accepts exactly these tokens
 *   env: { AUTH_JWT_SECRET: TEST_JWT_SECRET } for child processes
 */
export const TEST_JWT_SECRET = "tributary-test-secret-0123456789abcdef";

export interface MintOptions {
  sub?: string;
  tid?: string;
  pid?: string;
  tier?: Tier;
  roles?: string[];
  /** Seconds; negative mints an expired token. Default one hour. */
  ttlSeconds?: number;
  secret?: string;
  issuer?: string;
  audience?: string;
}

export function randomIdentity(): { sub: string; tid: string } {
  const id = randomUUID().replace(/-/g, "").slice(0, 12);
  return { sub: `u-${id}`, tid: `t-${id}` };
}

export async function mintToken(opts: MintOptions = {}): Promise<string> {
  const ident = randomIdentity();
  return signToken(
    { sub: opts.sub ?? ident.sub, tid: opts.tid ?? ident.tid, pid: opts.pid, tier: opts.tier ?? "registered", roles: opts.roles ?? [] },
    { secret: opts.secret ?? TEST_JWT_SECRET, ttlSeconds: opts.ttlSeconds ?? 3600, issuer: opts.issuer, audience: opts.audience },
  );
}

export function testAuthenticator(opts: { issuer?: string; audience?: string } = {}): Authenticator {
  return createAuthenticator({ secret: TEST_JWT_SECRET, issuer: opts.issuer, audience: opts.audience });
}
