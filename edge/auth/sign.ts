import { SignJWT } from "jose";
import type { Tier } from "./principal.js";

/**
 * Minting HS256 tokens for local use (`tributary token`) and tests. Production tokens come from the
 * deployment's identity provider; this exists so a fresh checkout can talk to its own edge.
 */
export interface TokenClaimsInput {
  sub: string;
  tid: string;
  pid?: string | undefined;
  tier: Tier;
  roles?: string[] | undefined;
}

export interface SignOptions {
  secret: string;
  /** Lifetime in seconds (may be negative to mint an already expired token for tests). */
  ttlSeconds: number;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Seconds since the epoch; defaults to now. */
  now?: number;
}

export async function signToken(claims: TokenClaimsInput, opts: SignOptions): Promise<string> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { tid: claims.tid, tier: claims.tier, roles: claims.roles ?? [] };
  if (claims.pid !== undefined) payload.pid = claims.pid;
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + opts.ttlSeconds);
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  return jwt.sign(new TextEncoder().encode(opts.secret));
}
