/**
 * Spend-report latency (issue 4 benchmark) over ~10 million events' worth of spend_daily rows.
 *
 * Rows are generated in SQL (generate_series, bounded): 50 tenants × 200 users × 3 models × 90 days,
 * about a third of the combinations present, one or two projects — ~0.9 M rows whose `messages`
 * add up to ~1 M replies, i.e. ~10 M events at ~10 events per reply (message.received,
 * assistant.started, deltas, the terminal event). Then the edge's own query function
 * (projections/queries.ts spend) is timed, and EXPLAIN ANALYZE of the same SQL is printed.
 *
 *   npx tsx bench/spend-query.ts [--target pg|pglite] [--runs 50]
 */
import { parseArgs } from "node:util";
import { sql } from "kysely";
import { liveSchema } from "../migrations/index.js";
import { spend, type SpendInput } from "../projections/queries.js";
import { testDatabase, type PgTarget } from "../test/support/postgres.js";

const { values } = parseArgs({
  options: { target: { type: "string", default: "pg" }, runs: { type: "string", default: "50" }, explain: { type: "boolean", default: true } },
});
const target = values.target as PgTarget;
const RUNS = Number(values.runs);

const t = await testDatabase(target);
const db = t.db;
try {
  const schema = await liveSchema(db as never);
  const s = sql.id(schema, "spend_daily");
  const t0 = performance.now();
  await sql`insert into ${s} (tenant_id, project_id, user_id, model, day, messages, input_tokens, output_tokens, cost_micros)
    select 't' || tn, case when u % 4 = 0 then '' else 'p' || (u % 2) end, 'u' || u, 'model-' || m, date '2026-08-01' + d,
           1 + (h % 2), 200 + h % 800, 50 + h % 400, 1000 + h % 90000
    from generate_series(1, 50) tn, generate_series(1, 200) u, generate_series(1, 3) m, generate_series(0, 89) d,
         lateral (select abs(hashtext(tn || ':' || u || ':' || m || ':' || d)) as h) x
    where x.h % 3 = 0`.execute(db);
  await sql`vacuum analyze ${s}`.execute(db);
  const loadMs = performance.now() - t0;
  const stats = (await sql<{ rows: number; replies: number }>`select count(*)::int8 as rows, sum(messages)::int8 as replies from ${s}`.execute(db)).rows[0];

  const cases: Array<[string, SpendInput]> = [
    ["30-day per-user report (one user, by day)", { tenantId: "t7", userId: "u42", from: "2026-09-01", to: "2026-09-30", groupBy: "day" }],
    ["30-day tenant report by user", { tenantId: "t7", from: "2026-09-01", to: "2026-09-30", groupBy: "user" }],
    ["30-day tenant report by model", { tenantId: "t7", from: "2026-09-01", to: "2026-09-30", groupBy: "model" }],
    ["30-day tenant report by day", { tenantId: "t7", from: "2026-09-01", to: "2026-09-30", groupBy: "day" }],
    ["90-day tenant report by project", { tenantId: "t7", from: "2026-08-01", to: "2026-10-29", groupBy: "project" }],
  ];
  const results: Array<Record<string, unknown>> = [];
  for (const [name, q] of cases) {
    for (let i = 0; i < 5; i++) await spend(db, q);
    const ms: number[] = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const a = performance.now();
      rows = (await spend(db, { ...q, tenantId: `t${1 + (i % 50)}` })).rows.length;
      ms.push(performance.now() - a);
    }
    ms.sort((x, y) => x - y);
    const pct = (p: number) => Number((ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))] ?? 0).toFixed(2));
    results.push({ name, rowsOut: rows, p50: pct(50), p95: pct(95), p99: pct(99), max: pct(100) });
  }
  console.log(JSON.stringify({ bench: "spend-query", target, spendRows: stats?.rows, replies: stats?.replies, loadMs: Math.round(loadMs), runs: RUNS, results }));
  for (const r of results) console.log(`| ${target} | ${String(r.name)} | ${String(r.rowsOut)} | ${String(r.p50)} | ${String(r.p95)} | ${String(r.p99)} |`);
  if (values.explain) {
    const plans: Array<[string, ReturnType<typeof sql>]> = [
      [
        "per-user, 30 days, by day",
        sql`explain (analyze, buffers) select day::text as key, sum(messages)::int8, sum(input_tokens)::int8, sum(output_tokens)::int8, sum(cost_micros)::int8
            from ${s} where day >= '2026-09-01' and day <= '2026-09-30' and tenant_id = 't7' and user_id = 'u42' group by tenant_id, day order by tenant_id, day`,
      ],
      [
        "tenant, 30 days, by user",
        sql`explain (analyze, buffers) select user_id as key, sum(messages)::int8, sum(input_tokens)::int8, sum(output_tokens)::int8, sum(cost_micros)::int8
            from ${s} where day >= '2026-09-01' and day <= '2026-09-30' and tenant_id = 't7' group by tenant_id, user_id order by tenant_id, user_id`,
      ],
    ];
    for (const [name, q] of plans) {
      const r = await q.execute(db);
      console.log(`\n-- ${name}`);
      for (const row of r.rows as Array<Record<string, string>>) console.log(Object.values(row)[0]);
    }
  }
} finally {
  await t.cleanup();
}
