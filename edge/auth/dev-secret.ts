import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../core/config.js";

/**
 * The local-development secret (CONTRACT §1): when AUTH_JWT_SECRET is unset and the edge listens on
 * loopback only, a random secret lives in DATA_DIR/dev-secret so that `tributary token` and the
 * running edge agree without any setup. Never used when the edge is reachable from elsewhere.
 */
export const DEV_SECRET_FILE = "dev-secret";

export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || /^127(\.\d{1,3}){3}$/.test(h);
}

export function devSecretPath(dataDir: string): string {
  return join(dataDir, DEV_SECRET_FILE);
}

/** Read DATA_DIR/dev-secret, creating it (mode 0600, exclusively, so two processes agree) when absent. */
export function loadOrCreateDevSecret(dataDir: string): string {
  const path = devSecretPath(dataDir);
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(path, randomBytes(32).toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
  } catch (e) {
    // Another process won the race: use its secret.
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  return readFileSync(path, "utf8").trim();
}

/**
 * The HS256 secret to use, or undefined when HS256 is off: AUTH_JWT_SECRET, else the dev secret on
 * loopback, else nothing (then AUTH_PUBLIC_KEY / AUTH_JWKS_URL must be set).
 */
export function resolveJwtSecret(cfg: Pick<Config, "AUTH_JWT_SECRET" | "HOST" | "DATA_DIR">): string | undefined {
  if (cfg.AUTH_JWT_SECRET) return cfg.AUTH_JWT_SECRET;
  if (isLoopbackHost(cfg.HOST)) return loadOrCreateDevSecret(cfg.DATA_DIR);
  return undefined;
}
