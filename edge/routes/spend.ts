import { TributaryError } from "../../core/errors.js";
import { isAdmin } from "../auth/principal.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { SpendQuery, queryObject } from "./schemas.js";

/** `GET /v1/spend?from=&to=&groupBy=`: admin only, the admin's tenant only, inclusive UTC days. */
export function mountSpendRoute(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "get",
    pattern: "/v1/spend",
    async handler(ctx) {
      const principal = await authenticate(ctx, deps.auth);
      if (!isAdmin(principal)) throw new TributaryError("FORBIDDEN", "admin role required");
      const q = validate(SpendQuery, queryObject(ctx.searchParams), "query");
      deps.gateway.breaker.assertUp("postgres");
      const report = await deps.readModels.spend({ tenantId: principal.tenantId, from: q.from, to: q.to, groupBy: q.groupBy });
      ctx.json(200, report);
    },
  });
}
