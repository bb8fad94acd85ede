import { loadConfig, type Config } from "../../core/config.js";
import { DependencyError } from "../../core/errors.js";
import { createLogger, type Logger } from "../../core/logger.js";
import { createRedis, type RedisClient } from "../../core/redis/connection.js";

/**
 * What a one-shot CLI command needs: validated configuration, a logger on stderr, and
 * dependencies opened lazily (a command that needs no Redis never connects to it) and closed
 * at the end. An unreachable dependency becomes DependencyError → exit 3.
 */
export class CliContext {
  readonly config: Config;
  readonly log: Logger;
  private redisClient: RedisClient | undefined;
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(env: Record<string, string | undefined> = process.env) {
    this.config = loadConfig(env);
    this.log = createLogger(env.LOG_LEVEL ?? "warn");
  }

  /**
   * A connected Redis client; throws DependencyError when Redis does not answer at first. One-shot
   * commands fail fast; long-running roles (`service`) keep retrying through a Redis restart.
   */
  async redis(opts: { service?: boolean } = {}): Promise<RedisClient> {
    if (this.redisClient) return this.redisClient;
    const client = createRedis(this.config, { name: opts.service ? "tributary" : "tributary-cli", failFast: !opts.service });
    client.on("error", () => {
      /* surfaced through the ping below */
    });
    try {
      await client.ping();
    } catch (e) {
      client.disconnect();
      throw new DependencyError("redis", e instanceof Error ? e.message : String(e), e);
    }
    this.redisClient = client;
    this.closers.push(async () => {
      await client.quit().catch(() => client.disconnect());
    });
    return client;
  }

  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    for (const fn of this.closers.reverse()) await fn().catch(() => undefined);
  }
}

/** Run a command body with a context that is always closed. */
export async function withContext<T>(fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const ctx = new CliContext();
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
