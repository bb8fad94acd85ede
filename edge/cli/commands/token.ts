import type { Command } from "commander";
import { parseDuration } from "../../../core/config.js";
import { ClaimsSchema, TIERS, type Tier } from "../../auth/principal.js";
import { loadOrCreateDevSecret, isLoopbackHost } from "../../auth/dev-secret.js";
import { signToken } from "../../auth/sign.js";
import { CliContext } from "../context.js";
import { UsageError } from "../exit-codes.js";

/**
 * `tributary token --sub U --tenant T [--project P] [--tier …] [--roles admin,auditor] [--ttl 1h]`
 * prints an HS256 JWT signed with AUTH_JWT_SECRET, or with the dev secret in DATA_DIR/dev-secret
 * (the one `tributary start` uses on loopback when AUTH_JWT_SECRET is unset).
 */
const MAX_TTL_MS = 3650 * 86_400_000;

interface TokenOptions {
  sub?: string;
  tenant?: string;
  project?: string;
  tier: string;
  roles?: string;
  ttl: string;
}

export function registerToken(program: Command): void {
  program
    .command("token")
    .description("print a signed JWT for local use")
    .option("--sub <userId>", "user id (claim sub)")
    .option("--tenant <tenantId>", "tenant id (claim tid)")
    .option("--project <projectId>", "project id (claim pid)")
    .option("--tier <tier>", `one of ${TIERS.join(", ")}`, "registered")
    .option("--roles <roles>", "comma-separated roles, e.g. admin,auditor")
    .option("--ttl <duration>", "lifetime, e.g. 15m, 1h, 7d", "1h")
    .action(async (opts: TokenOptions) => {
      if (!opts.sub) throw new UsageError("--sub is required");
      if (!opts.tenant) throw new UsageError("--tenant is required");
      if (!(TIERS as readonly string[]).includes(opts.tier)) throw new UsageError(`--tier must be one of ${TIERS.join(", ")}, got ${opts.tier}`);
      let ttlMs: number;
      try {
        ttlMs = parseDuration(opts.ttl);
      } catch {
        throw new UsageError(`--ttl must be a duration like 15m, 1h or 7d, got ${opts.ttl}`);
      }
      if (ttlMs < 1000) throw new UsageError("--ttl must be at least 1s");
      // A JWT's exp is a NumericDate: past this the product is no longer an exact integer (and no
      // local token needs to outlive ten years).
      if (!Number.isSafeInteger(ttlMs) || ttlMs > MAX_TTL_MS) throw new UsageError(`--ttl must be at most 3650d, got ${opts.ttl}`);
      const roles = (opts.roles ?? "").split(",").map((r) => r.trim()).filter(Boolean);
      // The same schema the edge applies, so a token this prints is a token the edge accepts.
      const claims = ClaimsSchema.safeParse({ sub: opts.sub, tid: opts.tenant, pid: opts.project, tier: opts.tier, roles, exp: 1 });
      if (!claims.success) {
        const issue = claims.error.issues[0];
        const flag = { sub: "--sub", tid: "--tenant", pid: "--project", roles: "--roles" }[String(issue?.path[0]) as "sub"] ?? "argument";
        throw new UsageError(`${flag}: ${issue?.message ?? "invalid"}`);
      }
      const ctx = new CliContext();
      let secret = ctx.config.AUTH_JWT_SECRET;
      if (!secret) {
        if (!isLoopbackHost(ctx.config.HOST)) {
          throw new UsageError("AUTH_JWT_SECRET is unset and HOST is not loopback: there is no dev secret to sign with");
        }
        secret = loadOrCreateDevSecret(ctx.config.DATA_DIR);
      }
      const token = await signToken(
        { sub: opts.sub, tid: opts.tenant, pid: opts.project, tier: opts.tier as Tier, roles },
        { secret, ttlSeconds: Math.floor(ttlMs / 1000), issuer: ctx.config.AUTH_ISSUER, audience: ctx.config.AUTH_AUDIENCE },
      );
      process.stdout.write(`${token}\n`);
    });
}
