import type { EdgeDeps } from "../deps.js";
import { mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";

/** `GET /metrics`: Prometheus text exposition of this edge's registry. */
export function mountMetricsRoute(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "get",
    pattern: "/metrics",
    async handler(ctx) {
      const text = await deps.metrics.registry.metrics();
      ctx.sendRaw(200, text, deps.metrics.registry.contentType);
    },
  });
}
