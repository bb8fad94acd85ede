import { createPublicKey, type KeyObject } from "node:crypto";
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  type JWTVerifyOptions,
  type JWTVerifyGetKey,
} from "jose";
import type { Config } from "../../core/config.js";
import { ConfigError } from "../../core/config.js";
import { TributaryError } from "../../core/errors.js";
import { ClaimsSchema, principalFromClaims, type Principal } from "./principal.js";
import { resolveJwtSecret } from "./dev-secret.js";

/**
 * Token verification (CONTRACT §2). Key material, in the order it is chosen per token:
 * an HS* token is checked against the HS256 secret; any other algorithm against AUTH_PUBLIC_KEY
 * (PEM or JWK JSON) or, failing that, the AUTH_JWKS_URL key set (fetched lazily and cached by
 * jose, refetched on an unknown `kid`). Algorithms are pinned so a token cannot pick "none" or
 * downgrade an asymmetric key to an HMAC secret.
 */
export interface Authenticator {
  /** The principal of a valid token; TributaryError UNAUTHENTICATED otherwise (never any other error). */
  verify(token: string | undefined): Promise<Principal>;
}

export interface AuthKeys {
  secret?: string | undefined;
  publicKey?: string | undefined;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
}

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
/** Tokens longer than this are refused before any parsing work. */
const MAX_TOKEN_CHARS = 8192;

function unauthenticated(message: string, cause?: unknown): TributaryError {
  return new TributaryError("UNAUTHENTICATED", message, cause === undefined ? {} : { cause });
}

async function importPublicKey(text: string): Promise<KeyObject | Awaited<ReturnType<typeof importJWK>>> {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const jwk = JSON.parse(trimmed) as Parameters<typeof importJWK>[0];
    return importJWK(jwk, jwk.alg);
  }
  // Environment variables often carry PEM with literal "\n".
  return createPublicKey(trimmed.includes("-----BEGIN") ? trimmed.replace(/\\n/g, "\n") : trimmed);
}

export function createAuthenticator(keys: AuthKeys): Authenticator {
  if (!keys.secret && !keys.publicKey && !keys.jwksUrl) {
    throw new ConfigError("invalid configuration: AUTH_JWT_SECRET: set AUTH_JWT_SECRET, AUTH_PUBLIC_KEY or AUTH_JWKS_URL");
  }
  const secret = keys.secret ? new TextEncoder().encode(keys.secret) : undefined;
  const publicKey = keys.publicKey ? importPublicKey(keys.publicKey) : undefined;
  // A failed import would otherwise surface as an unhandled rejection before the first request.
  publicKey?.catch(() => undefined);
  const jwks: JWTVerifyGetKey | undefined = keys.jwksUrl
    ? createRemoteJWKSet(new URL(keys.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000, timeoutDuration: 5_000 })
    : undefined;
  const base: JWTVerifyOptions = {
    ...(keys.issuer ? { issuer: keys.issuer } : {}),
    ...(keys.audience ? { audience: keys.audience } : {}),
    requiredClaims: ["exp", "sub"],
  };

  return {
    async verify(token) {
      if (!token) throw unauthenticated("no token");
      if (token.length > MAX_TOKEN_CHARS) throw unauthenticated("token too long");
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch (e) {
        throw unauthenticated("malformed token", e);
      }
      let payload: unknown;
      try {
        if (alg === "HS256") {
          if (!secret) throw unauthenticated("HS256 tokens are not accepted");
          payload = (await jwtVerify(token, secret, { ...base, algorithms: ["HS256"] })).payload;
        } else if (alg && ASYMMETRIC.includes(alg)) {
          if (publicKey) payload = (await jwtVerify(token, await publicKey, { ...base, algorithms: ASYMMETRIC })).payload;
          else if (jwks) payload = (await jwtVerify(token, jwks, { ...base, algorithms: ASYMMETRIC })).payload;
          else throw unauthenticated(`${alg} tokens are not accepted`);
        } else {
          throw unauthenticated(`algorithm ${String(alg)} is not accepted`);
        }
      } catch (e) {
        if (e instanceof TributaryError) throw e;
        if (e instanceof joseErrors.JWTExpired) throw unauthenticated("token expired", e);
        if (e instanceof joseErrors.JWTClaimValidationFailed) throw unauthenticated(`token claim ${e.claim} rejected: ${e.reason}`, e);
        if (e instanceof joseErrors.JOSEError) throw unauthenticated(`invalid token (${e.code})`, e);
        throw unauthenticated("invalid token", e);
      }
      const claims = ClaimsSchema.safeParse(payload);
      if (!claims.success) {
        const issue = claims.error.issues[0];
        throw unauthenticated(`invalid token claims: ${issue ? `${issue.path.join(".")}: ${issue.message}` : "invalid"}`);
      }
      return principalFromClaims(claims.data);
    },
  };
}

/** The authenticator the configuration describes (dev secret on loopback when nothing else is set). */
export function authenticatorFromConfig(
  cfg: Pick<Config, "AUTH_JWT_SECRET" | "AUTH_PUBLIC_KEY" | "AUTH_JWKS_URL" | "AUTH_ISSUER" | "AUTH_AUDIENCE" | "HOST" | "DATA_DIR">,
): Authenticator {
  const asymmetric = Boolean(cfg.AUTH_PUBLIC_KEY || cfg.AUTH_JWKS_URL);
  // With asymmetric keys configured the dev secret stays off: a deployment that chose an identity
  // provider must not also accept locally minted tokens.
  const secret = cfg.AUTH_JWT_SECRET ?? (asymmetric ? undefined : resolveJwtSecret(cfg));
  return createAuthenticator({
    secret,
    publicKey: cfg.AUTH_PUBLIC_KEY,
    jwksUrl: cfg.AUTH_JWKS_URL,
    issuer: cfg.AUTH_ISSUER,
    audience: cfg.AUTH_AUDIENCE,
  });
}
