import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import type { HttpContext } from "../http/context.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { EventsJsonQuery, queryObject } from "./schemas.js";

/**
 * `GET /v1/conversations/:id/events?format=json&from=&limit=` → {events, nextOffset}.
 *
 * The same path without `format=json` is the SSE stream (edge/sse). uWS cannot hold two handlers
 * for one method and pattern (the pinned build aborts the process with "Internal routing error"),
 * so when SSE is served its route owns the path and calls `eventsJsonHandler` for `format=json`;
 * `mountEventsJsonRoute` is only for an edge without SSE.
 */
export const EVENTS_PATTERN = "/v1/conversations/:id/events";

export function eventsJsonHandler(deps: EdgeDeps): (ctx: HttpContext) => Promise<void> {
  return async (ctx) => {
    // Query `access_token` is for EventSource only (CONTRACT §2); a JSON client can send a header.
    const principal = await authenticate(ctx, deps.auth);
    const q = validate(EventsJsonQuery, queryObject(ctx.searchParams), "query");
    deps.gateway.breaker.assertUp("redis");
    const owner = await deps.access.check(ctx.param(0), principal);
    const page = await deps.events.page(owner.conversationId, q.from, q.limit);
    ctx.json(200, page);
  };
}

export function mountEventsJsonRoute(app: TemplatedApp, deps: EdgeDeps): void {
  const handler = eventsJsonHandler(deps);
  mount(app, deps, { method: "get", pattern: EVENTS_PATTERN, handler });
}
