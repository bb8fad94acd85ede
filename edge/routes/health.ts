import { errorMessage } from "../../core/errors.js";
import type { EdgeDeps } from "../deps.js";
import { withTimeout } from "../gateway/breaker.js";
import { mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";

/**
 * `/healthz`: the process runs (liveness, never touches a dependency, so a Redis outage does not get
 * the edge restarted in a loop). `/readyz`: every dependency answers now (readiness); the 503 body is
 * the contract's error body plus `status` and `checks`, so both a load balancer and a human see which
 * check failed.
 */
export function mountHealthRoutes(app: TemplatedApp, deps: EdgeDeps, opts: { checkTimeoutMs?: number } = {}): void {
  const timeoutMs = opts.checkTimeoutMs ?? 2000;

  mount(app, deps, {
    method: "get",
    pattern: "/healthz",
    handler: (ctx) => ctx.json(200, { status: "ok" }),
  });

  mount(app, deps, {
    method: "get",
    pattern: "/readyz",
    async handler(ctx) {
      const checks: Record<string, string> = {};
      await Promise.all(
        deps.checks.map(async (c) => {
          try {
            await withTimeout(c.check(), timeoutMs, `${c.name} check`);
            checks[c.name] = "ok";
          } catch (e) {
            checks[c.name] = errorMessage(e) || "failed";
          }
        }),
      );
      const failing = Object.entries(checks).filter(([, v]) => v !== "ok");
      if (failing.length === 0) {
        ctx.json(200, { status: "ready", checks });
        return;
      }
      ctx.json(503, {
        status: "unready",
        checks,
        error: { code: "UNAVAILABLE", message: failing.map(([k, v]) => `${k}: ${v}`).join("; "), details: { checks } },
        requestId: ctx.requestId,
      });
    },
  });
}
