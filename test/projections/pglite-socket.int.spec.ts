import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { migrateToLatest } from "../../migrations/index.js";
import { applyBatch } from "../../projections/apply.js";
import { openDatabase, openPglite, portFile, servePglite } from "../../projections/db.js";
import { listConversations } from "../../projections/queries.js";
import { chatWorkload, LogBuilder } from "./fixtures.js";

/**
 * CONTRACT §1: with no DATABASE_URL, `start` serves its PGlite over the Postgres protocol on loopback
 * (port in DATA_DIR/pg.port); CLI commands use that port while it answers, else open DATA_DIR/pg.
 */
describe("PGlite over a loopback socket", () => {
  const dir = mkdtempSync(join(tmpdir(), "tributary-pgsock-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a second client goes through the served socket, transactions included; without the server it opens the directory", async () => {
    const owner = await openPglite(join(dir, "pg"));
    await migrateToLatest(owner.db as never);
    const served = await servePglite(owner, dir);
    expect(existsSync(portFile(dir))).toBe(true);

    const client = await openDatabase({ DATA_DIR: dir, DATABASE_URL: undefined });
    expect(client.target).toBe("pglite-socket");
    const log = new LogBuilder(2);
    const r = await applyBatch(client.db, log.add(...chatWorkload(5, { conversations: 3, turns: 1, deltas: 2, prefix: "sock" })));
    expect(r.applied).toBeGreaterThan(3);
    const page = await listConversations(client.db, { tenantId: "acme", limit: 10 });
    expect(page.items.length).toBeGreaterThan(0);
    // Int8 normalised the same way through the socket (pg parsers) as in-process.
    const inProc = await listConversations(owner.db, { tenantId: "acme", limit: 10 });
    expect(inProc).toEqual(page);
    await client.close();

    await served.stop();
    expect(existsSync(portFile(dir))).toBe(false);
    await owner.close();
    const direct = await openDatabase({ DATA_DIR: dir, DATABASE_URL: undefined });
    expect(direct.target).toBe("pglite");
    expect((await listConversations(direct.db, { tenantId: "acme", limit: 10 })).items).toEqual(page.items);
    await direct.close();
  });
});
