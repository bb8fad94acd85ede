import type { PGlite } from "@electric-sql/pglite";
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

/**
 * A kysely Dialect over PGlite's query API (no PGlite dialect package is installed).
 *
 * PGlite is one Postgres backend, i.e. one session: two kysely "connections" interleaving their
 * statements would interleave their transactions. So the driver hands out a single connection and
 * queues acquirers behind a mutex, exactly as kysely's own SQLite driver does; a transaction holds
 * the connection from BEGIN to COMMIT.
 */
export class PGliteDialect implements Dialect {
  constructor(private readonly pglite: PGlite) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Resolves with the release function once every earlier holder has released. */
  lock(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => held);
    return ready;
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pglite: PGlite) {}

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    const res = await this.pglite.query<R>(q.sql, [...q.parameters]);
    const command = res.command ?? "";
    const affected = res.affectedRows;
    // kysely reads numAffectedRows for INSERT/UPDATE/DELETE/MERGE results, like its pg driver.
    if (affected !== undefined && /^(INSERT|UPDATE|DELETE|MERGE)/i.test(command)) {
      return { rows: res.rows, numAffectedRows: BigInt(affected) };
    }
    return { rows: res.rows };
  }

  async *streamQuery<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    // PGlite materialises results in memory anyway; a single chunk is the honest stream.
    yield await this.executeQuery<R>(q);
  }
}

class PGliteDriver implements Driver {
  private readonly mutex = new Mutex();
  private readonly connection: PGliteConnection;
  private release: (() => void) | undefined;

  constructor(private readonly pglite: PGlite) {
    this.connection = new PGliteConnection(pglite);
  }

  async init(): Promise<void> {
    await this.pglite.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    this.release = await this.mutex.lock();
    return this.connection;
  }

  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("begin"));
    if (settings.isolationLevel || settings.accessMode) {
      const parts = [settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : "", settings.accessMode ?? ""];
      await conn.executeQuery(CompiledQuery.raw(`set transaction ${parts.filter(Boolean).join(" ")}`));
    }
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw("rollback"));
  }

  async savepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`savepoint "${name.replace(/"/g, '""')}"`));
  }

  async rollbackToSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`rollback to savepoint "${name.replace(/"/g, '""')}"`));
  }

  async releaseSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`release savepoint "${name.replace(/"/g, '""')}"`));
  }

  async releaseConnection(): Promise<void> {
    const r = this.release;
    this.release = undefined;
    r?.();
  }

  async destroy(): Promise<void> {
    // The PGlite instance belongs to whoever opened it (db.ts closes it after kysely).
  }
}
