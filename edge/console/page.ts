import { readFileSync } from "node:fs";
import type { EdgeDeps } from "../deps.js";
import { mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";

/**
 * The web console's static files at `/console` (issue 6 item 5). Plain HTML, CSS and an ES module
 * written as browser JavaScript: there is no build step in this project, so nothing is bundled —
 * see docs/console.md for why. The files are read once when the edge starts; the page itself holds
 * no secret (it asks for an admin token and calls the API with it), so it is served without auth.
 *
 * A strict Content-Security-Policy keeps the token in sessionStorage out of reach of injected
 * script: only our own script runs, and event text is always inserted as text, never as HTML.
 */
const ASSETS = new URL("./assets/", import.meta.url);

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  path: string;
  file: string;
  type: string;
}

const FILES: Asset[] = [
  { path: "/console", file: "index.html", type: "text/html; charset=utf-8" },
  { path: "/console/", file: "index.html", type: "text/html; charset=utf-8" },
  { path: "/console/console.js", file: "console.js", type: "text/javascript; charset=utf-8" },
  { path: "/console/console.css", file: "console.css", type: "text/css; charset=utf-8" },
];

export function mountConsolePage(app: TemplatedApp, deps: EdgeDeps): void {
  for (const a of FILES) {
    const body = readFileSync(new URL(a.file, ASSETS));
    mount(app, deps, {
      method: "get",
      pattern: a.path,
      handler(ctx) {
        ctx.sendRaw(200, body, a.type, {
          headers: { "content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" },
        });
      },
    });
  }
}
