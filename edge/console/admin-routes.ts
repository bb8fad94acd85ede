import { z } from "zod";
import { decodeRaw } from "../../core/codec.js";
import { TributaryError } from "../../core/errors.js";
import { deadLetters, type DeadLetterEntry } from "../../core/redis/dead-letters.js";
import { isAdmin, type Principal } from "../auth/principal.js";
import { deadLetterJson } from "../cli/commands/dlq.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import type { HttpContext } from "../http/context.js";
import { authenticate, mount } from "../http/route.js";
import { queryObject } from "../routes/schemas.js";
import type { TemplatedApp } from "../uws.js";
import { deadLetterTenant } from "./dead-letter-tenant.js";
import { RateWindow } from "./delivery-rate.js";

/**
 * The console's admin endpoints (issue 6 item 5). Admin role only; tenant data only of the admin's
 * own tenant (I9):
 *
 *   GET  /v1/admin/stats                         this edge's live connections and deliveries/s
 *   GET  /v1/admin/projections                   projection lag per partition
 *   GET  /v1/admin/dlq?limit=                    dead letters of the admin's tenant (+ unattributed)
 *   POST /v1/admin/dlq/:partition/:entryId/redrive
 *
 * Connection counts and projection lag are numbers about the deployment, not any tenant's data.
 * Dead letters are attributed to a tenant from their payload (dead-letter-tenant.ts); another
 * tenant's entry is invisible and answers 404 to a redrive, exactly like an id that does not exist.
 */
const DlqQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** How many dead letters are read (over every tenant) to find a page of the caller's own. */
const SCAN_LIMIT = 5_000;

async function requireAdmin(ctx: HttpContext, deps: EdgeDeps): Promise<Principal> {
  const principal = await authenticate(ctx, deps.auth);
  if (!isAdmin(principal)) throw new TributaryError("FORBIDDEN", "admin role required");
  return principal;
}

/** Sum of a labelled metric's values, and the values by label. */
async function byTransport(metric: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> }) {
  const { values } = await metric.get();
  const out: Record<string, number> = {};
  let total = 0;
  for (const v of values) {
    const t = String(v.labels.transport ?? "other");
    out[t] = (out[t] ?? 0) + v.value;
    total += v.value;
  }
  return { total, byTransport: out };
}

export function mountAdminRoutes(app: TemplatedApp, deps: EdgeDeps): void {
  const rate = new RateWindow();
  const dlq = deadLetters(deps.redis, deps.config.PARTITIONS);

  /** The caller's view of a dead letter: payload only when it is their tenant's; null = not theirs. */
  async function visible(d: DeadLetterEntry, tenantId: string): Promise<Record<string, unknown> | null> {
    const tenant = await deadLetterTenant(d, deps.access);
    if (tenant === tenantId) {
      const json = deadLetterJson(d);
      // A command decodes (that is how it was attributed): show it as data, not base64.
      const c = d.fields.c;
      if (c) json.fields = { ...(json.fields as Record<string, unknown>), c: decodeRaw(c) };
      return { ...json, tenant };
    }
    if (tenant !== null) return null;
    // Unattributed: metadata for the operator, never the bytes (they may be someone's, garbled).
    const { fields: _f, ...meta } = deadLetterJson(d);
    return { ...meta, tenant: null, fields: {} };
  }

  mount(app, deps, {
    method: "get",
    pattern: "/v1/admin/stats",
    async handler(ctx) {
      await requireAdmin(ctx, deps);
      const connections = await byTransport(deps.metrics.connections);
      const deliveries = await byTransport(deps.metrics.deliveries);
      const perSecond = rate.observe(deliveries.total, Date.now());
      ctx.json(200, {
        at: new Date().toISOString(),
        connections,
        deliveries: { ...deliveries, perSecond: Math.round(perSecond * 10) / 10 },
      });
    },
  });

  mount(app, deps, {
    method: "get",
    pattern: "/v1/admin/projections",
    async handler(ctx) {
      await requireAdmin(ctx, deps);
      const status = deps.operations?.projectionStatus;
      if (!status) throw new TributaryError("UNAVAILABLE", "projection status is not available on this edge");
      deps.gateway.breaker.assertUp("postgres");
      const partitions = await status();
      const lagEvents = partitions.reduce((a, p) => a + p.lagEvents, 0);
      const maxLagSeconds = partitions.reduce((a, p) => Math.max(a, p.lagSeconds), 0);
      ctx.json(200, { partitions, totals: { lagEvents, maxLagSeconds } });
    },
  });

  mount(app, deps, {
    method: "get",
    pattern: "/v1/admin/dlq",
    async handler(ctx) {
      const principal = await requireAdmin(ctx, deps);
      const q = validate(DlqQuery, queryObject(ctx.searchParams), "query");
      deps.gateway.breaker.assertUp("redis");
      const items: Array<Record<string, unknown>> = [];
      const all = await dlq.list({ limit: SCAN_LIMIT });
      for (const d of all) {
        const v = await visible(d, principal.tenantId);
        if (v) items.push(v);
        if (items.length >= q.limit) break;
      }
      ctx.json(200, { items, truncated: items.length >= q.limit || all.length >= SCAN_LIMIT });
    },
  });

  mount(app, deps, {
    method: "post",
    pattern: "/v1/admin/dlq/:partition/:entryId/redrive",
    body: { maxBytes: deps.config.MAX_BODY_BYTES, optional: true },
    async handler(ctx, body) {
      await body;
      const principal = await requireAdmin(ctx, deps);
      const id = `${ctx.param(0)}/${ctx.param(1)}`;
      deps.gateway.breaker.assertUp("redis");
      const d = await dlq.show(id).catch((e: unknown) => {
        // A malformed id names nothing: the same 404 as a missing one.
        if (e instanceof TributaryError && e.code === "BAD_REQUEST") return null;
        throw e;
      });
      if (!d || !(await visible(d, principal.tenantId))) throw new TributaryError("NOT_FOUND", `no dead letter ${id}`);
      const redriven = await dlq.redrive(id).catch((e: unknown) => {
        if (e instanceof TributaryError && e.code === "NOT_FOUND") return 0;
        throw e;
      });
      if (redriven === 0) throw new TributaryError("NOT_FOUND", `no dead letter ${id}`);
      ctx.json(200, { redriven, id });
    },
  });
}
