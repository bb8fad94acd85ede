import { TributaryError } from "../../core/errors.js";
import type { EdgeDeps } from "../deps.js";
import { mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";

/** Every unmatched path and method: the contract's error body, not uWS's bare empty 404. Mount last. */
export function mountNotFound(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "any",
    pattern: "/*",
    handler(ctx) {
      throw new TributaryError("NOT_FOUND", `no route for ${ctx.method} ${ctx.url}`);
    },
  });
}
