import type { Command } from "commander";
import { DependencyError, errorMessage } from "../../../core/errors.js";
import { startEdgeRole } from "../../role.js";
import { withContext } from "../context.js";
import { installProcessGuards } from "../../../core/process-guards.js";

/**
 * `tributary edge`: one edge node (HTTP, SSE, Socket.IO). Any number may run on one Redis; each
 * needs workers (`tributary worker`) to decide commands and a projector for the read models.
 * Stops gracefully on SIGINT/SIGTERM.
 */
export function registerEdge(program: Command): void {
  program
    .command("edge")
    .description("run an edge node: HTTP API, Server-Sent Events and Socket.IO on HOST:PORT")
    .action(async () => {
      await withContext(async (ctx) => {
        // Exit 3 when Redis is down at start; later outages are the breaker's (the service client
        // keeps reconnecting through a Redis restart).
        installProcessGuards(ctx.log);
        const redis = await ctx.redis({ service: true });
        redis.on("error", (e: unknown) => ctx.log.warn({ err: errorMessage(e) }, "redis connection error"));
        const role = await startEdgeRole({ config: ctx.config, log: ctx.log, redis }).catch((e: unknown) => {
          if (e instanceof Error && /listen/.test(e.message)) throw new DependencyError("network", e.message, e);
          throw e;
        });
        ctx.log.info({ host: ctx.config.HOST, port: role.port }, "edge running");
        process.stderr.write(`tributary edge listening on http://${ctx.config.HOST}:${role.port}\n`);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        await role.stop();
      });
    });
}
