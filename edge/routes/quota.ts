import { TributaryError } from "../../core/errors.js";
import { isAdmin } from "../auth/principal.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { SetQuotaBody, UserIdParam } from "./schemas.js";

/** `GET /v1/quota` (the caller's ledger) and `PUT /v1/admin/quotas/:userId` (admin, own tenant only). */
export function mountQuotaRoutes(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "get",
    pattern: "/v1/quota",
    async handler(ctx) {
      const principal = await authenticate(ctx, deps.auth);
      deps.gateway.breaker.assertUp("redis");
      const ledger = await deps.commands.getLedger({ tenantId: principal.tenantId, userId: principal.userId, tier: principal.tier });
      ctx.json(200, ledger);
    },
  });

  mount(app, deps, {
    method: "put",
    pattern: "/v1/admin/quotas/:userId",
    body: { maxBytes: deps.config.MAX_BODY_BYTES },
    async handler(ctx, body) {
      const principal = await authenticate(ctx, deps.auth);
      if (!isAdmin(principal)) throw new TributaryError("FORBIDDEN", "admin role required");
      const userId = validate(UserIdParam, ctx.param(0), "userId");
      const input = validate(SetQuotaBody, await body);
      // The tenant is the admin's own, never taken from the request: an admin cannot reach across (I9).
      await deps.gateway.admitCommand(`${principal.tenantId}:${userId}`);
      const stop = deps.metrics.commandLatency.startTimer({ command: "setQuota" });
      try {
        const ledger = await deps.commands.setQuota({ tenantId: principal.tenantId, userId, ...input });
        stop({ outcome: "ok" });
        ctx.json(200, ledger);
      } catch (e) {
        stop({ outcome: "error" });
        throw e;
      }
    },
  });
}
