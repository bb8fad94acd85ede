import { assertMayCommand } from "../access.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { CancelBody } from "./schemas.js";

/** `POST /v1/conversations/:id/cancel` → 202 {cancelled}. A body is optional; if sent it must be `{}`. */
export function mountCancelRoute(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "post",
    pattern: "/v1/conversations/:id/cancel",
    body: { maxBytes: deps.config.MAX_BODY_BYTES, optional: true },
    async handler(ctx, body) {
      const principal = await authenticate(ctx, deps.auth);
      deps.gateway.breaker.assertUp("redis");
      const owner = await deps.access.check(ctx.param(0), principal);
      assertMayCommand(owner, principal, { allowAdmin: true });
      validate(CancelBody, await body);
      await deps.gateway.admitCommand(owner.conversationId);
      const stop = deps.metrics.commandLatency.startTimer({ command: "cancel" });
      try {
        const result = await deps.commands.cancel({
          conversationId: owner.conversationId,
          tenantId: principal.tenantId,
          userId: principal.userId,
          roles: principal.roles,
        });
        stop({ outcome: "ok" });
        ctx.json(202, { cancelled: result.cancelled });
      } catch (e) {
        stop({ outcome: "error" });
        throw e;
      }
    },
  });
}
