import type { Kysely } from "kysely";

/**
 * A migration in two parts. `meta` touches the shared `public` objects (the read-model pointer) and
 * runs once per database. `readModel` creates or alters read-model tables inside a given schema: the
 * Migrator runs it against the live schema, and `projections rebuild` runs every migration's
 * `readModel` against a fresh schema, so a rebuilt copy has exactly the shape a migrated one has.
 */
export interface ReadModelMigration {
  /** Sorts in order ("001-…"); the Migrator's migration name. */
  name: string;
  meta?: (db: Kysely<unknown>) => Promise<void>;
  readModel: (db: Kysely<unknown>, schema: string) => Promise<void>;
}
