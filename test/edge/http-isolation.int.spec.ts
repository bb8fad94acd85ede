import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startHttpEdge, type HttpEdgeHarness } from "../support/http-edge.js";
import { mintToken } from "../support/tokens.js";

/**
 * I9 as a property: over random viewers (tenant, user, roles) and conversations, a route answers the
 * conversation's data exactly when the viewer is its owner, or an auditor/admin of its tenant; every
 * other viewer gets 404 — identical to an id that never existed — and no body ever carries another
 * tenant's or user's data.
 */
const TENANTS = ["ta", "tb", "tc"];
const USERS = ["u1", "u2", "u3"];
const ROLES: string[][] = [[], ["auditor"], ["admin"]];

let h: HttpEdgeHarness;
let run: string;
const conversations: Array<{ id: string; tenant: string; owner: string; title: string }> = [];

const tid = (t: string) => `${run}-${t}`;
const uid = (u: string) => `${run}-${u}`;

beforeAll(async () => {
  h = await startHttpEdge({ gateway: { messageRates: { anonymous: 1e6, registered: 1e6, privileged: 1e6 } } });
  run = Math.random().toString(36).slice(2, 8);
  for (const t of TENANTS) {
    for (const u of USERS.slice(0, 2)) {
      const token = await mintToken({ tid: tid(t), sub: uid(u) });
      const title = `secret of ${t}/${u}`;
      const r = await call(`${h.url}/v1/conversations`, { token, body: { title } });
      conversations.push({ id: r.json.id, tenant: t, owner: u, title });
    }
  }
});
afterAll(async () => {
  await h?.stop();
});

describe("tenant isolation", () => {
  it("every route answers per I9, and 404 for a foreign id is indistinguishable from an unknown one", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TENANTS),
        fc.constantFrom(...USERS),
        fc.constantFrom(...ROLES),
        fc.nat({ max: conversations.length }),
        fc.constantFrom("detail", "events", "message", "cancel"),
        async (t, u, roles, idx, route) => {
          const viewer = await mintToken({ tid: tid(t), sub: uid(u), roles });
          const target = conversations[idx];
          const id = target?.id ?? `c-never-${idx}`;
          const sameTenant = target?.tenant === t;
          const isOwner = sameTenant && target?.owner === u;
          const sees = isOwner || (sameTenant && roles.length > 0);
          let res;
          let expected: number;
          switch (route) {
            case "detail":
              res = await call(`${h.url}/v1/conversations/${id}`, { token: viewer });
              expected = sees ? 200 : 404;
              break;
            case "events":
              res = await call(`${h.url}/v1/conversations/${id}/events?format=json`, { token: viewer });
              expected = sees ? 200 : 404;
              break;
            case "message":
              res = await call(`${h.url}/v1/conversations/${id}/messages`, {
                token: viewer,
                body: { text: "hello", clientMessageId: `m-${Math.random().toString(36).slice(2)}` },
              });
              expected = isOwner ? 201 : sees ? 403 : 404;
              break;
            case "cancel":
              res = await call(`${h.url}/v1/conversations/${id}/cancel`, { token: viewer, method: "POST" });
              expected = isOwner || (sameTenant && roles.includes("admin")) ? 202 : sees ? 403 : 404;
              break;
          }
          expect(res.status, `${route} by ${t}/${u}[${roles}] on ${target?.tenant}/${target?.owner}`).toBe(expected);
          if (expected === 404) {
            expect(res.json.error).toEqual({ code: "NOT_FOUND", message: `conversation ${id} not found` });
          }
          // Nothing of another tenant ever appears in a body.
          for (const c of conversations) {
            if (c.tenant !== t) {
              expect(res.text).not.toContain(c.title);
              expect(res.text).not.toContain(tid(c.tenant));
            }
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it("lists only the caller's conversations, or the tenant's for auditors/admins", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...TENANTS), fc.constantFrom(...USERS), fc.constantFrom(...ROLES), async (t, u, roles) => {
        const viewer = await mintToken({ tid: tid(t), sub: uid(u), roles });
        const res = await call(`${h.url}/v1/conversations?limit=100`, { token: viewer });
        expect(res.status).toBe(200);
        const got = (res.json.items as Array<{ id: string }>).map((c) => c.id).sort();
        const expected = conversations.filter((c) => c.tenant === t && (roles.length > 0 || c.owner === u)).map((c) => c.id).sort();
        expect(got).toEqual(expected);
      }),
      { numRuns: 30 },
    );
  });
});
