// The web console (issue 6 item 5): its page at /console and the admin endpoints it reads.
import type { EdgeDeps } from "../deps.js";
import type { TemplatedApp } from "../uws.js";
import { mountAdminRoutes } from "./admin-routes.js";
import { mountConsolePage } from "./page.js";

export { mountAdminRoutes } from "./admin-routes.js";
export { mountConsolePage } from "./page.js";
export { deadLetterTenant } from "./dead-letter-tenant.js";
export { RateWindow } from "./delivery-rate.js";
export type { OperationsDeps } from "./operations.js";

export function mountConsole(app: TemplatedApp, deps: EdgeDeps): void {
  mountConsolePage(app, deps);
  mountAdminRoutes(app, deps);
}
