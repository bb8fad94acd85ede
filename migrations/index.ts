import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from "kysely";
import { m001 } from "./001-read-models.js";
import { m002 } from "./002-sessions-ledgers.js";
import type { ReadModelMigration } from "./types.js";

export type { ReadModelMigration } from "./types.js";

/** Every migration, in order. Append only; never edit one that has shipped. */
export const READ_MODEL_MIGRATIONS: readonly ReadModelMigration[] = [m001, m002];

/** The live read-model schema (after 001 has run). */
export async function liveSchema(db: Kysely<unknown>): Promise<string> {
  const r = await sql<{ schema_name: string }>`select schema_name from tributary_readmodel where id = 1`.execute(db);
  const name = r.rows[0]?.schema_name;
  if (!name) throw new Error("no live read-model schema: run `tributary migrate`");
  return name;
}

function asKyselyMigration(m: ReadModelMigration): Migration {
  return {
    async up(db) {
      if (m.meta) await m.meta(db);
      await m.readModel(db, await liveSchema(db));
    },
  };
}

export function migrator(db: Kysely<unknown>): Migrator {
  return new Migrator({
    db,
    provider: {
      async getMigrations() {
        return Object.fromEntries(READ_MODEL_MIGRATIONS.map((m) => [m.name, asKyselyMigration(m)]));
      },
    },
  });
}

/** Apply every pending migration; throws the first failure (its MigrationResultSet in `cause`). */
export async function migrateToLatest(db: Kysely<unknown>): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateToLatest());
}

/** Migrate up (or down) to a named migration: used by the upgrade tests. */
export async function migrateTo(db: Kysely<unknown>, name: string): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateTo(name));
}

function check(rs: MigrationResultSet): MigrationResultSet {
  if (rs.error) {
    const failed = rs.results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Error(`migration ${failed} failed: ${rs.error instanceof Error ? rs.error.message : String(rs.error)}`, { cause: rs });
  }
  return rs;
}

/** Create every read-model table inside `schema` (which must exist): the rebuild's fresh copy. */
export async function createReadModelTables(db: Kysely<unknown>, schema: string): Promise<void> {
  for (const m of READ_MODEL_MIGRATIONS) await m.readModel(db, schema);
}
