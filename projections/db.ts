import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Config } from "../core/config.js";
import { DependencyError, errorMessage } from "../core/errors.js";
import { INT8_OID, NUMERIC_OID, parseInt8, parseNumeric } from "./int8.js";
import { PGliteDialect } from "./pglite-dialect.js";
import type { Database } from "./schema.js";

/**
 * The two Postgres targets behind one kysely type (DESIGN §Projections): `pg` when DATABASE_URL is
 * set, embedded PGlite under DATA_DIR/pg otherwise. Both get the same type parsers (int8.ts), so
 * queries see numbers for int8/numeric and 'YYYY-MM-DD' strings for dates on either target.
 */
export type Db = Kysely<Database>;
export type DbTarget = "pg" | "pglite" | "pglite-socket";

export interface OpenedDb {
  db: Db;
  target: DbTarget;
  /** The embedded instance, when this process owns it (target "pglite"). */
  pglite?: PGlite;
  close(): Promise<void>;
}

const DATE_OID = 1082;
/** A date stays the ISO text Postgres sends: `pg` would otherwise build a Date at local midnight. */
const keepText = (v: string) => v;

const pgTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID) return parseInt8;
    if (oid === NUMERIC_OID) return parseNumeric;
    if (oid === DATE_OID) return keepText;
    return pg.types.getTypeParser(oid, format ?? "text");
  },
};

export interface PgOptions {
  /** Pool size; the projector needs 1–2, the edge more. */
  max?: number;
  /** Run `set search_path` etc. on each new connection. */
  applicationName?: string;
}

export function openPg(url: string, opts: PgOptions = {}): OpenedDb {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? "tributary",
    types: pgTypes,
    connectionTimeoutMillis: 5000,
  });
  // An idle client's error (server restart) must not crash the process; the next query reports it.
  pool.on("error", () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, target: "pg", close: () => db.destroy() };
}

/** PGlite on a directory (or "memory://"). */
export async function openPglite(dir: string): Promise<OpenedDb> {
  if (!dir.startsWith("memory://")) mkdirSync(dir, { recursive: true });
  // Loaded on first use: a process on a real Postgres (an edge, a worker) never pays for PGlite's
  // module and WASM set-up in start-up time or heap (~10 MB measured on the edge).
  const { PGlite } = await import("@electric-sql/pglite");
  const pglite = new PGlite(dir, {
    parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: parseNumeric, [DATE_OID]: keepText },
  });
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return {
    db,
    target: "pglite",
    pglite,
    close: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

export const portFile = (dataDir: string) => join(resolve(dataDir), "pg.port");

function portAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ host: "127.0.0.1", port });
    const t = setTimeout(() => {
      s.destroy();
      done(false);
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      s.end();
      done(true);
    });
    s.once("error", () => {
      clearTimeout(t);
      done(false);
    });
  });
}

/** The loopback URL of a PGlite served by `tributary start` on this DATA_DIR, if it answers. */
export async function servedPgliteUrl(dataDir: string): Promise<string | undefined> {
  const file = portFile(dataDir);
  if (!existsSync(file)) return undefined;
  const port = Number(readFileSync(file, "utf8").trim());
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return (await portAnswers(port)) ? `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable` : undefined;
}

/**
 * CONTRACT §1: DATABASE_URL → pg. Otherwise, while `tributary start` serves PGlite on this DATA_DIR
 * (its port in DATA_DIR/pg.port answers), go through that socket — PGlite is single-process, so a
 * second process must not open the same directory; else open DATA_DIR/pg directly.
 * Throws DependencyError when the database does not answer.
 */
export async function openDatabase(cfg: Pick<Config, "DATABASE_URL" | "DATA_DIR">, opts: PgOptions = {}): Promise<OpenedDb> {
  let opened: OpenedDb;
  if (cfg.DATABASE_URL) opened = openPg(cfg.DATABASE_URL, opts);
  else {
    const served = await servedPgliteUrl(cfg.DATA_DIR);
    if (served) opened = { ...openPg(served, { ...opts, max: 1 }), target: "pglite-socket" };
    else {
      try {
        opened = await openPglite(join(resolve(cfg.DATA_DIR), "pg"));
      } catch (e) {
        throw new DependencyError("postgres", `cannot open PGlite under ${cfg.DATA_DIR}/pg: ${errorMessage(e)}`, e);
      }
    }
  }
  try {
    await sql`select 1`.execute(opened.db);
  } catch (e) {
    await opened.close().catch(() => undefined);
    throw new DependencyError("postgres", errorMessage(e), e);
  }
  return opened;
}

export interface ServedPglite {
  port: number;
  stop(): Promise<void>;
}

/**
 * Serve this process's PGlite over the Postgres protocol on loopback and write the port to
 * DATA_DIR/pg.port (CONTRACT §1), so CLI commands can reach the database while `start` owns it.
 * The socket server queues statements per connection and keeps a connection's transaction
 * exclusive. In-process users should then also go through the socket (openDatabase picks it up),
 * because an in-process kysely transaction and a socket transaction would share PGlite's one session.
 */
export async function servePglite(opened: OpenedDb, dataDir: string): Promise<ServedPglite> {
  if (!opened.pglite) throw new Error("servePglite needs a database opened with openPglite (no DATABASE_URL)");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  const server = new PGLiteSocketServer({ db: opened.pglite, host: "127.0.0.1", port: 0, maxConnections: 32 });
  await server.start();
  const conn = server.getServerConn();
  const port = Number(conn.slice(conn.lastIndexOf(":") + 1));
  mkdirSync(resolve(dataDir), { recursive: true });
  const file = portFile(dataDir);
  writeFileSync(file, `${port}\n`);
  return {
    port,
    stop: async () => {
      rmSync(file, { force: true });
      await server.stop();
    },
  };
}
