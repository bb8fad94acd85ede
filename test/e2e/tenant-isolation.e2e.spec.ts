import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Envelope } from "../../core/envelope.js";
import { startDeployment, type Deployment } from "../support/cluster-procs.js";
import { call } from "../support/http-edge.js";
import { mintToken } from "../support/tokens.js";

/**
 * Issue 7 §5, I9 as a property over the real system: `tributary edge`, `worker` and `projector`
 * processes (real read models in Postgres, real access checks against the event streams).
 *
 * Each run makes a random population — tenants with random ids, users whose ids repeat across
 * tenants (the same `sub` in two tenants is two people), each owning a conversation with a message
 * in it — and random viewers: the users themselves, and auditors / admins of a tenant. Then every
 * viewer tries every conversation of the run and random ids that never existed, over every door:
 * HTTP (detail, `format=json` events, list, post a message, cancel), an SSE stream from the start,
 * and Socket.IO (`subscribe` from the start, `chat_message`, `cancel`), while the owners post again
 * so live events flow. The rule (CONTRACT §2): a user sees only their own conversations, an auditor
 * or admin every conversation of their own tenant, nobody another tenant's — a foreign id answers
 * 404 NOT_FOUND exactly like an unknown one; an auditor may read but not post (403), an admin may
 * also cancel. Checked: every answer, and that no response body, SSE event or Socket.IO event ever
 * carries a conversation (or title) the viewer may not see.
 */
const RUNS = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Conv {
  id: string;
  tenant: string;
  owner: string;
  title: string;
  token: string;
}
interface Viewer {
  tenant: string;
  user: string;
  roles: string[];
  token: string;
}

const sees = (v: Viewer, c: Conv | undefined) => !!c && c.tenant === v.tenant && (c.owner === v.user || v.roles.includes("auditor") || v.roles.includes("admin"));
const owns = (v: Viewer, c: Conv | undefined) => !!c && c.tenant === v.tenant && c.owner === v.user;

/** Ids as the claims allow them (CONTRACT §2); short, so users of different tenants share them. */
const idArb = fc.stringMatching(/^[A-Za-z0-9_.:@|-]{1,6}$/);
const population = fc.record({
  tenants: fc.uniqueArray(idArb, { minLength: 2, maxLength: 3 }),
  users: fc.uniqueArray(idArb, { minLength: 1, maxLength: 2 }),
  /** Per tenant: which of `users` own a conversation there (at least one). */
  owners: fc.array(fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }), { minLength: 3, maxLength: 3 }),
  /** Extra viewers with roles, by tenant index. */
  staff: fc.array(fc.tuple(fc.nat({ max: 2 }), fc.constantFrom<string[]>(["auditor"], ["admin"], ["auditor", "admin"])), { maxLength: 2 }),
  /** Ids that never existed (conversation id alphabet). */
  unknown: fc.array(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/), { minLength: 1, maxLength: 2 }),
});

let d: Deployment;
let base: string;

beforeAll(async () => {
  d = await startDeployment({ mode: "single", edges: 1, workers: 1, projectors: 1, env: { SIM_TOKENS_PER_SEC: "400", SIM_MAX_TOKENS: "4" } });
  base = d.edges[0]!.url;
}, 120_000);

afterAll(async () => {
  await d?.stop();
});

/** The first SSE event of a stream (or the error answer); the stream is dropped afterwards. */
async function sseFirst(id: string, token: string, viaQuery: boolean): Promise<{ status: number; env?: Envelope; text?: string }> {
  const ac = new AbortController();
  const url = `${base}/v1/conversations/${encodeURIComponent(id)}/events?from=0${viaQuery ? `&access_token=${encodeURIComponent(token)}` : ""}`;
  const res = await fetch(url, { headers: viaQuery ? {} : { authorization: `Bearer ${token}` }, signal: ac.signal });
  if (res.status !== 200) return { status: res.status, text: await res.text() };
  const reader = res.body!.getReader();
  let buf = "";
  const until = Date.now() + 15_000;
  try {
    while (Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString("utf8");
      const m = /^data: (.+)$/m.exec(buf);
      if (m?.[1]) return { status: 200, env: JSON.parse(m[1]) as Envelope };
    }
    return { status: 200 };
  } finally {
    ac.abort();
  }
}

function socketFor(token: string): Promise<{ socket: Socket; got: Envelope[] }> {
  const socket = io(base, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
  const got: Envelope[] = [];
  socket.on("chat_event", (env: Envelope) => got.push(env));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, got }));
    socket.once("connect_error", reject);
  });
}

const ack = (s: Socket, event: string, payload: unknown) => s.timeout(15_000).emitWithAck(event, payload) as Promise<{ ok: boolean; error?: { code: string } }>;

describe("tenant isolation over random tenants, users and ids (HTTP, SSE, Socket.IO)", () => {
  it("no door lets a viewer reach a conversation outside their rights", { timeout: 240_000 }, async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(population, async (p) => {
        const run = randomUUID().slice(0, 8);
        // Tenant ids are unique per run (so runs never meet); user ids are not, on purpose.
        const tenants = p.tenants.map((t) => `${t}-${run}`);
        const convs: Conv[] = [];
        const viewers: Viewer[] = [];
        await Promise.all(
          tenants.map(async (tenant, ti) => {
            for (const [ui, user] of p.users.entries()) {
              const token = await mintToken({ sub: user, tid: tenant, tier: "privileged" });
              viewers.push({ tenant, user, roles: [], token });
              const flags = p.users.map((_, i) => p.owners[ti]?.[i] ?? false);
              if (!flags.some(Boolean)) flags[0] = true;
              if (!flags[ui]) continue;
              // Bracketed: ids may be prefixes of one another ("@" and "@0"), and a bare title would
              // then be a substring of another's and read as a leak.
              const title = `secret ${run} <${tenant}/${user}>`;
              const r = await call(`${base}/v1/conversations`, { token, body: { title } });
              expect(r.status, r.text).toBe(201);
              convs.push({ id: r.json.id as string, tenant, owner: user, title, token });
            }
          }),
        );
        for (const [ti, roles] of p.staff) {
          const tenant = tenants[ti % tenants.length]!;
          const user = `staff-${roles.join("-")}`;
          viewers.push({ tenant, user, roles, token: await mintToken({ sub: user, tid: tenant, roles, tier: "privileged" }) });
        }
        // Each owner speaks once; the read model has the conversation before anyone looks.
        await Promise.all(convs.map((c) => call(`${base}/v1/conversations/${c.id}/messages`, { token: c.token, body: { text: "first", clientMessageId: `first-${run}` } })));
        await vi.waitFor(
          async () => {
            for (const c of convs) expect((await call(`${base}/v1/conversations/${c.id}`, { token: c.token })).status).toBe(200);
          },
          { timeout: 30_000, interval: 100 },
        );

        const targets: Array<Conv | { id: string }> = [...convs, ...p.unknown.map((u) => ({ id: `${u}-${run}` }))];
        const conv = (t: Conv | { id: string }): Conv | undefined => ("owner" in t ? t : undefined);
        const breaks: string[] = [];
        /** Another's title, or an id the viewer did not give (a 404 names the id asked for). */
        const leaks = (v: Viewer, text: string, where: string, asked?: string) => {
          for (const c of convs) {
            if (sees(v, c)) continue;
            if ((c.id !== asked && text.includes(c.id)) || text.includes(c.title)) breaks.push(`${where}: ${v.tenant}/${v.user}[${v.roles}] got ${c.tenant}/${c.owner}'s ${c.id}`);
          }
        };

        // Socket.IO: every viewer subscribes to every target from the start.
        const sockets = await Promise.all(viewers.map((v) => socketFor(v.token)));
        try {
          await Promise.all(
            viewers.map(async (v, vi) => {
              const s = sockets[vi]!.socket;
              for (const t of targets) {
                const c = conv(t);
                const who = `${v.tenant}/${v.user}[${v.roles}] on ${c ? `${c.tenant}/${c.owner}` : "unknown"} ${t.id}`;
                const sub = await ack(s, "subscribe", { conversationId: t.id, from: "0" });
                if (sees(v, c) ? !sub.ok : sub.ok || sub.error?.code !== "NOT_FOUND") breaks.push(`sio subscribe ${who}: ${JSON.stringify(sub)}`);
                if (!owns(v, c)) {
                  const msg = await ack(s, "chat_message", { conversationId: t.id, text: "intruder", clientMessageId: `x-${run}-${vi}` });
                  const want = sees(v, c) ? "FORBIDDEN" : "NOT_FOUND";
                  if (msg.ok || msg.error?.code !== want) breaks.push(`sio chat_message ${who}: ${JSON.stringify(msg)} (want ${want})`);
                  const cancel = await ack(s, "cancel", { conversationId: t.id });
                  // An admin's cancel of another user's conversation is the separate test below.
                  const admin = !!c && c.tenant === v.tenant && v.roles.includes("admin");
                  if (!admin && (sees(v, c) ? cancel.ok || cancel.error?.code !== "FORBIDDEN" : cancel.ok || cancel.error?.code !== "NOT_FOUND")) {
                    breaks.push(`sio cancel ${who}: ${JSON.stringify(cancel)}`);
                  }
                }
              }
            }),
          );

          // Live events flow while everyone is subscribed: each owner speaks again.
          await Promise.all(convs.map((c) => call(`${base}/v1/conversations/${c.id}/messages`, { token: c.token, body: { text: "second", clientMessageId: `second-${run}` } })));

          // HTTP and SSE, every viewer × every target.
          await Promise.all(
            viewers.map(async (v) => {
              for (const t of targets) {
                const c = conv(t);
                const who = `${v.tenant}/${v.user}[${v.roles}] on ${c ? `${c.tenant}/${c.owner}` : "unknown"} ${t.id}`;
                const okOr404 = sees(v, c) ? 200 : 404;
                for (const path of [`/v1/conversations/${t.id}`, `/v1/conversations/${t.id}/events?format=json&from=0`]) {
                  const r = await call(`${base}${path}`, { token: v.token });
                  if (r.status !== okOr404) breaks.push(`GET ${path} ${who}: ${r.status}`);
                  if (r.status === 404 && r.json?.error?.code !== "NOT_FOUND") breaks.push(`GET ${path} ${who}: ${r.text}`);
                  leaks(v, r.text, `GET ${path}`, t.id);
                }
                if (!owns(v, c)) {
                  const m = await call(`${base}/v1/conversations/${t.id}/messages`, { token: v.token, body: { text: "intruder", clientMessageId: `h-${run}` } });
                  if (m.status !== (sees(v, c) ? 403 : 404)) breaks.push(`POST messages ${who}: ${m.status} ${m.text}`);
                  leaks(v, m.text, "POST messages", t.id);
                  if (!(c && c.tenant === v.tenant && v.roles.includes("admin"))) {
                    const k = await call(`${base}/v1/conversations/${t.id}/cancel`, { token: v.token, method: "POST" });
                    if (k.status !== (sees(v, c) ? 403 : 404)) breaks.push(`POST cancel ${who}: ${k.status} ${k.text}`);
                    leaks(v, k.text, "POST cancel", t.id);
                  }
                }
                const sse = await sseFirst(t.id, v.token, checked % 2 === 0);
                if (sse.status !== okOr404) breaks.push(`SSE ${who}: ${sse.status}`);
                if (sse.env && sse.env.conversationId !== t.id) breaks.push(`SSE ${who}: event of ${sse.env.conversationId}`);
                if (sse.status === 200 && !sse.env) breaks.push(`SSE ${who}: no event from the start`);
                leaks(v, sse.text ?? JSON.stringify(sse.env ?? {}), "SSE", t.id);
                checked++;
              }
              const list = await call(`${base}/v1/conversations?limit=100`, { token: v.token });
              if (list.status !== 200) breaks.push(`list ${v.tenant}/${v.user}: ${list.status}`);
              leaks(v, list.text, "list");
              const mine = convs.filter((c) => sees(v, c)).map((c) => c.id);
              const listed = ((list.json?.items ?? []) as Array<{ id: string }>).map((i) => i.id);
              for (const id of mine) if (!listed.includes(id)) breaks.push(`list ${v.tenant}/${v.user}[${v.roles}] misses ${id}`);
            }),
          );

          // Every owner's socket saw its second reply end; by then every socket had its chance to
          // receive what it must not.
          await vi.waitFor(
            () => {
              for (const [vi, v] of viewers.entries()) {
                for (const c of convs.filter((x) => owns(v, x))) {
                  const ended = sockets[vi]!.got.filter((e) => e.conversationId === c.id && e.type === "assistant.completed").length;
                  expect(ended, `${c.id} replies seen by its owner`).toBeGreaterThanOrEqual(2);
                }
              }
            },
            { timeout: 30_000, interval: 100 },
          );
          await sleep(200);
          for (const [vi, v] of viewers.entries()) {
            for (const e of sockets[vi]!.got) {
              const c = convs.find((x) => x.id === e.conversationId);
              if (!sees(v, c)) breaks.push(`sio event of ${e.conversationId} reached ${v.tenant}/${v.user}[${v.roles}]`);
            }
          }
        } finally {
          for (const s of sockets) s.socket.disconnect();
        }
        expect(breaks, breaks.slice(0, 20).join("\n")).toEqual([]);
      }),
      {
        numRuns: RUNS,
        // Always tried: ids that are prefixes of one another, in tenants and users ("@" and "@0"),
        // so an access check by prefix (or a leak check by substring) cannot pass unseen.
        examples: [[{ tenants: ["0", "0-"], users: ["@", "@0"], owners: [[true, true], [true, false], [false, true]], staff: [[0, ["auditor"]]], unknown: ["c_"] }]],
      },
    );
    expect(checked).toBeGreaterThan(0);
  });

  /**
   * CONTRACT §2 / the edge's rule (assertMayCommand allowAdmin): a tenant admin may cancel any
   * conversation of the tenant. Found by the property above (defect 10 in docs/reliability.md): the
   * command API used to send the actor a principal without roles, so the actor answered NOT_FOUND
   * (404 over HTTP, {ok:false, NOT_FOUND} over Socket.IO); test/edge/http-isolation.int.spec.ts
   * never saw it because its command side is a fake.
   */
  it("a tenant admin may cancel another user's conversation of the tenant (HTTP and Socket.IO)", async () => {
    const tenant = `t-admin-${randomUUID().slice(0, 8)}`;
    const owner = await mintToken({ sub: "owner", tid: tenant, tier: "privileged" });
    const admin = await mintToken({ sub: "boss", tid: tenant, roles: ["admin"], tier: "privileged" });
    const created = await call(`${base}/v1/conversations`, { token: owner, body: { title: "t" } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const http = await call(`${base}/v1/conversations/${id}/cancel`, { token: admin, method: "POST" });
    const { socket } = await socketFor(admin);
    try {
      const sio = await ack(socket, "cancel", { conversationId: id });
      expect({ http: http.status, sio: sio.ok }, `${http.text} / ${JSON.stringify(sio)}`).toEqual({ http: 202, sio: true });
    } finally {
      socket.disconnect();
    }
  });
});
