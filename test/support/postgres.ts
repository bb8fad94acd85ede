import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { migrateToLatest } from "../../migrations/index.js";
import { openPg, openPglite, type Db, type OpenedDb } from "../../projections/db.js";

/**
 * A fresh, isolated database for one test file, on either target:
 * - "pg": a new database `tributary_t_<random>` on the shared server (127.0.0.1:5432, trust auth),
 *   dropped on cleanup — read models use several schemas, so a whole database is the unit of isolation;
 * - "pglite": PGlite in a new temp directory, removed on cleanup.
 * Never drops anything it did not create.
 *
 *   const t = await testDatabase("pglite");   // migrated unless { migrate: false }
 *   afterAll(() => t.cleanup());
 */
export type PgTarget = "pg" | "pglite";
export const PG_TARGETS: PgTarget[] = ["pg", "pglite"];

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDb {
  target: PgTarget;
  opened: OpenedDb;
  db: Db;
  /** Environment for a child process (CLI e2e) pointing at the same database. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function testDatabase(target: PgTarget, opts: { migrate?: boolean } = {}): Promise<TestDb> {
  let t: TestDb;
  if (target === "pg") {
    const name = `tributary_t_${randomBytes(6).toString("hex")}`;
    await admin((c) => c.query(`create database ${name}`));
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    const opened = openPg(url.toString(), { max: 4 });
    t = {
      target,
      opened,
      db: opened.db,
      env: { DATABASE_URL: url.toString() },
      async cleanup() {
        await opened.close();
        await admin((c) => c.query(`drop database if exists ${name} with (force)`));
      },
    };
  } else {
    const dir = mkdtempSync(join(tmpdir(), "tributary-pglite-"));
    const opened = await openPglite(join(dir, "pg"));
    t = {
      target,
      opened,
      db: opened.db,
      env: { DATA_DIR: dir },
      async cleanup() {
        await opened.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (opts.migrate !== false) await migrateToLatest(t.db as never);
  return t;
}
