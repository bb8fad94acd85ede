import { z } from "zod";

/**
 * Configuration from the environment (CONTRACT §1), validated once at start-up. A bad value stops the
 * process with one line naming the variable (ConfigError.message), never a stack trace.
 */
const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const hostPort = z.string().regex(/^[^\s:,]+:\d{1,5}$/, "expected host:port");

/** "90s", "15m", "1h", "7d" or plain seconds → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  return n * unit;
}
const duration = z.string().transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a duration like 30s, 15m, 1h or 7d" });
    return z.NEVER;
  }
});

export const ConfigSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(8080),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "expected redis://host:port").default("redis://127.0.0.1:6379"),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(hostPort).min(1))
    .optional(),
  /**
   * Namespace for every Redis key, so several deployments (or test runs) can share one Redis. No
   * braces: the `{pN}` hash tag must stay the first one in each key.
   */
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{0,64}$/, "expected up to 64 of [A-Za-z0-9:_.-]").default(""),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "expected postgres://…").optional(),
  DATA_DIR: z.string().min(1).default("./.data"),
  S3_BUCKET: z.string().min(1).optional(),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_FORCE_PATH_STYLE: bool.default(false),
  PARTITIONS: int(1, 4096).default(16),
  AUTH_JWT_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  AUTH_PUBLIC_KEY: z.string().min(1).optional(),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  RESPONDER: z.enum(["simulated", "openai"]).default("simulated"),
  OPENAI_BASE_URL: z.string().url().default("https://api.openai.com/v1"),
  OPENAI_API_KEY: z.string().optional(),
  SIM_TOKENS_PER_SEC: z.coerce.number().positive().max(1_000_000).default(50),
  SIM_MAX_TOKENS: int(1, 1_000_000).default(64),
  MAX_DELIVERIES: int(1, 1000).default(5),
  MAX_BODY_BYTES: int(256, 64 * 1024 * 1024).default(65536),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** How long a command id is remembered for dedupe (I2). */
  IDEM_TTL: duration.default(86_400_000),
  /** Snapshot an actor every N events. */
  SNAPSHOT_EVERY: int(1).default(100),
  /**
   * Actors a worker keeps in memory, per kind (conversations, ledgers, budgets, sessions); the least
   * recently used beyond it are passivated and rehydrated on their next command (docs/actors.md,
   * "Bounded caches").
   */
  ACTOR_CACHE_SIZE: int(100, 10_000_000).default(10_000),
  /** Events older than this move to the archive. */
  RETENTION: duration.default(7 * 86_400_000),
  /** `local`: acknowledge after the primary has the append; `wait-replica`: also WAIT for one replica. */
  DURABILITY: z.enum(["local", "wait-replica"]).default("local"),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Parse the environment; throws ConfigError whose message is one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most twelve-factor tooling.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") cleaned[key] = v;
  }
  const parsed = ConfigSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? "environment");
    throw new ConfigError(`invalid configuration: ${name}: ${issue?.message ?? "invalid"} (got ${JSON.stringify(cleaned[name] ?? "")})`);
  }
  return parsed.data;
}
