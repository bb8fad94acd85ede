import type { Command } from "commander";
import { migrateToLatest } from "../../../migrations/index.js";
import { openDatabase } from "../../../projections/db.js";
import { withContext } from "../context.js";

/** `tributary migrate`: apply pending read-model migrations (kysely Migrator); `start` runs it too. */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("apply Postgres migrations (DATABASE_URL, or PGlite under DATA_DIR/pg)")
    .action(async () => {
      await withContext(async (ctx) => {
        const opened = await openDatabase(ctx.config, { max: 1 });
        ctx.onClose(() => opened.close());
        const rs = await migrateToLatest(opened.db as never);
        const done = (rs.results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
        process.stdout.write(done.length ? `applied ${done.join(", ")} (${opened.target})\n` : `up to date (${opened.target})\n`);
      });
    });
}
