import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ERROR_STATUS } from "../../core/errors.js";
import { ConversationEvents } from "../../core/events/conversation.js";
import { LedgerEvents } from "../../core/events/ledger.js";
import { SessionEvents } from "../../core/events/session.js";
import {
  CreateConversationBody,
  EventsJsonQuery,
  ListConversationsQuery,
  PostMessageBody,
  SetQuotaBody,
  SpendQuery,
} from "../../edge/routes/schemas.js";
import { StateQuery } from "../../edge/routes/state.js";
import { CancelPayload, ChatMessagePayload, SubscribePayload, UnsubscribePayload } from "../../edge/socketio/schemas.js";

/**
 * docs/api.md is written by hand but checked against the code, so it cannot drift: every route the
 * edge mounts, every field of every request schema, every Socket.IO event payload field, every
 * event type with its `data` fields and every error code must appear in it. Adding a route, a field
 * or an event type without documenting it fails this test.
 */
const root = join(import.meta.dirname, "..", "..");
const doc = readFileSync(join(root, "docs", "api.md"), "utf8");

/** Top-level keys of a zod object schema (unwrapping optional / refine wrappers). */
function keysOf(schema: z.ZodType): string[] {
  let s: unknown = schema;
  for (let i = 0; i < 5; i++) {
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (shape && typeof shape === "object") return Object.keys(shape);
    const inner = (s as { unwrap?: () => unknown }).unwrap?.();
    if (!inner) break;
    s = inner;
  }
  throw new Error("not an object schema");
}

/** The part of the doc from the heading that contains `marker` to the next heading of the same or a higher level. */
function section(marker: string): string {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && l.includes(marker));
  if (start < 0) throw new Error(`docs/api.md has no heading containing ${marker}`);
  const level = /^(#+)/.exec(lines[start] ?? "")?.[1]?.length ?? 6;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const m = /^(#+) /.exec(lines[i] ?? "");
    if (m && (m[1]?.length ?? 0) <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start, end).join("\n");
}

/** The table row (a line starting with `|`) whose first cell is `` `name` ``. */
function row(name: string): string {
  const line = doc.split("\n").find((l) => l.startsWith(`| \`${name}\` |`));
  if (!line) throw new Error(`docs/api.md has no table row for ${name}`);
  return line;
}

/** Every `method: "…", pattern: …` pair the edge mounts, read from the route sources. */
function mountedRoutes(): string[] {
  const dir = (d: string): string[] => (existsSync(join(root, d)) ? readdirSync(join(root, d)).map((f) => join(d, f)) : []);
  const files = [...dir(join("edge", "routes")), ...dir(join("edge", "console")), join("edge", "sse", "route.ts")].filter(
    (f) => f.endsWith(".ts") && !f.endsWith(".spec.ts"),
  );
  const constants: Record<string, string> = {};
  const out = new Set<string>();
  for (const f of files) {
    const src = readFileSync(join(root, f), "utf8");
    for (const m of src.matchAll(/export const ([A-Z_]+_PATTERN) = "([^"]+)"/g)) constants[m[1] as string] = m[2] as string;
  }
  for (const f of files) {
    const src = readFileSync(join(root, f), "utf8");
    for (const m of src.matchAll(/method: "(\w+)",\s*pattern: (?:"([^"]+)"|([A-Z_]+_PATTERN))/g)) {
      const method = m[1] === "del" ? "DELETE" : (m[1] as string).toUpperCase();
      const pattern = m[2] ?? constants[m[3] as string];
      if (!pattern) throw new Error(`${f}: unknown pattern constant ${m[3]}`);
      // The catch-all 404 (`any /*`) is not a route of the API.
      if (pattern !== "/*") out.add(`${method} ${pattern}`);
    }
  }
  return [...out].sort();
}

describe("docs/api.md against the code", () => {
  it("finds the routes in the sources (the scan itself works)", () => {
    const routes = mountedRoutes();
    expect(routes).toContain("POST /v1/conversations/:id/messages");
    expect(routes).toContain("GET /v1/conversations/:id/events");
    expect(routes.length).toBeGreaterThanOrEqual(12);
  });

  it("has a section for every mounted HTTP route", () => {
    const missing = mountedRoutes().filter((r) => !doc.split("\n").some((l) => /^#{2,6} /.test(l) && l.includes(`\`${r}\``)));
    expect(missing, "routes without a heading `METHOD /pattern` in docs/api.md").toEqual([]);
  });

  const bodies: [string, z.ZodType][] = [
    ["POST /v1/conversations", CreateConversationBody],
    ["GET /v1/conversations", ListConversationsQuery],
    ["POST /v1/conversations/:id/messages", PostMessageBody],
    ["GET /v1/conversations/:id/events", EventsJsonQuery],
    ["GET /v1/conversations/:id/state", StateQuery],
    ["PUT /v1/admin/quotas/:userId", SetQuotaBody],
    ["GET /v1/spend", SpendQuery],
  ];
  it.each(bodies)("documents every field of the request schema of %s", (route, schema) => {
    const text = section(`\`${route}\``);
    const missing = keysOf(schema).filter((k) => !text.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  const socketEvents: [string, z.ZodType][] = [
    ["subscribe", SubscribePayload],
    ["unsubscribe", UnsubscribePayload],
    ["chat_message", ChatMessagePayload],
    ["cancel", CancelPayload],
  ];
  it.each(socketEvents)("documents the Socket.IO event %s and its payload fields", (name, schema) => {
    const line = row(name);
    const missing = keysOf(schema).filter((k) => !line.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  it("documents the server → client Socket.IO event", () => {
    expect(row("chat_event")).toContain("offset");
  });

  const eventTypes = [
    ...Object.entries(ConversationEvents),
    ...Object.entries(SessionEvents),
    ...Object.entries(LedgerEvents),
  ] as [string, z.ZodType][];
  it.each(eventTypes)("documents event type %s with every data field", (type, schema) => {
    const line = row(type);
    const missing = keysOf(schema).filter((k) => !line.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  it("documents the envelope fields", () => {
    const text = section("Event envelope");
    for (const f of ["conversationId", "offset", "version", "type", "at", "data"]) expect(text).toContain(`\`${f}\``);
  });

  it("documents every error code with its status", () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(row(code), code).toContain(String(status));
    }
  });
});
