import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createReadModelTables } from "../../migrations/index.js";
import { applyBatch } from "../../projections/apply.js";
import { dumpReadModels } from "../../projections/dump.js";
import { PG_TARGETS, testDatabase, type TestDb } from "../support/postgres.js";
import { chatWorkload, LogBuilder } from "./fixtures.js";

/**
 * I4: however the log is cut into batches, and however often a batch (or a batch overlapping what
 * was already applied) is delivered again, the read models end equal, row for row, to one
 * application of the whole log.
 */
describe.each(PG_TARGETS)("redelivery on %s", (target) => {
  let t: TestDb;
  let n = 0;
  const fresh = async () => {
    const schema = `rm_fc_${n++}`;
    await sql`create schema ${sql.id(schema)}`.execute(t.db);
    await createReadModelTables(t.db as never, schema);
    return schema;
  };
  beforeAll(async () => {
    t = await testDatabase(target);
  });
  afterAll(() => t?.cleanup());

  it("any batching with redeliveries equals a single application", async () => {
    const log = new LogBuilder(3);
    log.add(...chatWorkload(7, { conversations: 6, turns: 2, deltas: 4 }));
    const all = log.entries;
    const ref = await fresh();
    await applyBatch(t.db, all, { schema: ref });
    const expected = await dumpReadModels(t.db, ref);
    expect(expected.spend_daily?.length).toBeGreaterThan(0);

    await fc.assert(
      fc.asyncProperty(
        // Each step: how far back the batch starts (a redelivery overlap) and how many new entries it adds.
        fc.array(fc.record({ back: fc.nat({ max: 12 }), ahead: fc.nat({ max: 25 }) }), { minLength: 1, maxLength: 30 }),
        async (steps) => {
          const schema = await fresh();
          let done = 0;
          const deliver = (a: number, b: number) => applyBatch(t.db, all.slice(a, b), { schema });
          for (const s of steps) {
            const start = Math.max(0, done - s.back);
            const end = Math.min(all.length, done + s.ahead);
            if (end <= start) continue;
            await deliver(start, end);
            // The same batch delivered twice in a row (a lost acknowledgement).
            if (s.back % 3 === 0) await deliver(start, end);
            done = Math.max(done, end);
          }
          await deliver(Math.max(0, done - 5), all.length);
          expect(await dumpReadModels(t.db, schema)).toEqual(expected);
          await sql`drop schema ${sql.id(schema)} cascade`.execute(t.db);
        },
      ),
      { numRuns: target === "pg" ? 25 : 12 },
    );
  });
});
