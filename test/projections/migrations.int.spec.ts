import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveSchema, migrateTo, migrateToLatest, READ_MODEL_MIGRATIONS } from "../../migrations/index.js";
import { applyBatch } from "../../projections/apply.js";
import { PG_TARGETS, testDatabase, type TestDb } from "../support/postgres.js";
import { chatWorkload, LogBuilder } from "./fixtures.js";

/** STYLE §12: each migration is upgrade-tested against a database holding data of the version before. */
describe.each(PG_TARGETS)("migrations on %s", (target) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await testDatabase(target, { migrate: false });
  });
  afterAll(() => t?.cleanup());

  it("N-1 with data → N keeps the data and the projector carries on", async () => {
    const names = READ_MODEL_MIGRATIONS.map((m) => m.name);
    const previous = names[names.length - 2];
    if (!previous) throw new Error("needs at least two migrations");
    await migrateTo(t.db as never, previous);
    const schema = await liveSchema(t.db as never);
    const log = new LogBuilder(2);
    await applyBatch(t.db, log.add(...chatWorkload(3, { conversations: 4, turns: 2, deltas: 3 })));
    const before = await sql<{ n: number; c: number }>`select count(*)::int8 as n, coalesce(sum(cost_micros), 0)::int8 as c from ${sql.id(schema, "spend_daily")}`.execute(t.db);
    const convs = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.id(schema, "conversations")}`.execute(t.db);
    expect(convs.rows[0]?.n).toBe(4);

    const rs = await migrateToLatest(t.db as never);
    expect(rs.results?.map((r) => [r.migrationName, r.status])).toEqual(names.slice(names.indexOf(previous) + 1).map((n) => [n, "Success"]));
    const after = await sql<{ n: number; c: number }>`select count(*)::int8 as n, coalesce(sum(cost_micros), 0)::int8 as c from ${sql.id(schema, "spend_daily")}`.execute(t.db);
    expect(after.rows).toEqual(before.rows);

    // The new version's read models work on top of the old data.
    await applyBatch(
      t.db,
      log.add(
        { kind: "session", id: "s-up", type: "session.opened", at: "2026-11-21T10:00:00.000Z", data: { sessionId: "s-up", userId: "u1", tenantId: "acme", tier: "registered", transport: "sse" } },
        ...chatWorkload(4, { conversations: 1, turns: 1, deltas: 1 }),
      ),
    );
    const sessions = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.id(schema, "sessions")}`.execute(t.db);
    expect(sessions.rows[0]?.n).toBe(1);
    // Running it again is a no-op.
    expect((await migrateToLatest(t.db as never)).results).toEqual([]);
  });
});
