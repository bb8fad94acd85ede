import type { EdgeDeps } from "../deps.js";
import type { TemplatedApp } from "../uws.js";
import { mountCancelRoute } from "./cancel.js";
import { mountConversationRoutes } from "./conversations.js";
import { mountHealthRoutes } from "./health.js";
import { mountMessageRoutes } from "./messages.js";
import { mountMetricsRoute } from "./metrics.js";
import { mountNotFound } from "./not-found.js";
import { mountQuotaRoutes } from "./quota.js";
import { mountSpendRoute } from "./spend.js";
import { mountStateRoute } from "./state.js";
import { mountConsole } from "../console/index.js";

export { mountNotFound } from "./not-found.js";
export { EVENTS_PATTERN, eventsJsonHandler, mountEventsJsonRoute } from "./events-json.js";

/**
 * Every HTTP route of CONTRACT §3 except the events path, which the SSE route owns when SSE is
 * served (it calls `eventsJsonHandler` for `format=json`); otherwise mount `mountEventsJsonRoute`.
 * The catch-all 404 is mounted separately, last.
 */
export function mountHttpRoutes(app: TemplatedApp, deps: EdgeDeps): void {
  mountHealthRoutes(app, deps);
  mountMetricsRoute(app, deps);
  mountConversationRoutes(app, deps);
  mountMessageRoutes(app, deps);
  mountCancelRoute(app, deps);
  mountQuotaRoutes(app, deps);
  mountSpendRoute(app, deps);
  mountStateRoute(app, deps);
  mountConsole(app, deps);
}
