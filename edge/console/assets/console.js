// Tributary web console: plain browser JavaScript (an ES module, no framework, no build step —
// docs/console.md says why). It talks only to the edge's own HTTP API with the admin token the
// operator pastes; the token lives in sessionStorage (gone when the tab closes) and is sent as a
// Bearer header, or as the `access_token` query where EventSource cannot send headers (CONTRACT §2).
// Everything from the server is inserted with textContent, never innerHTML.

const TOKEN_KEY = "tributary.console.token";
const POLL_STATS_MS = 1000;
const POLL_SLOW_MS = 3000;
const EVENT_TYPES = [
  "conversation.created",
  "conversation.archived",
  "message.received",
  "message.rejected",
  "assistant.started",
  "assistant.delta",
  "assistant.completed",
  "assistant.cancelled",
  "assistant.failed",
];

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

let token = sessionStorage.getItem(TOKEN_KEY);
const timers = [];
let live = null;

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? String(status);
  }
}

async function api(path, init = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, numeric = []) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = c instanceof Node ? document.createElement("td") : el("td", c);
    if (c instanceof Node) td.append(c);
    if (numeric.includes(i)) td.className = "num";
    tr.append(td);
  });
  return tr;
}

const money = (micros) => `$${(micros / 1e6).toFixed(micros >= 1e6 ? 2 : 6)}`;
const day = (d) => d.toISOString().slice(0, 10);

/** The token's claims, for display only (the server verifies; this never decides anything). */
function claims(t) {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}

// ---- login -------------------------------------------------------------------------------

async function login(candidate) {
  token = candidate;
  try {
    await api("/v1/admin/stats");
  } catch (e) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const reason = e instanceof ApiError && e.status === 403 ? "this token has no admin role" : e instanceof ApiError && e.status === 401 ? "the token was not accepted" : e.message;
    $("login-error").textContent = `Cannot open the console: ${reason}.`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("login-error").textContent = "";
  start();
}

function start() {
  const c = claims(token);
  $("who").textContent = `${c.sub ?? "?"} @ ${c.tid ?? "?"}`;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  const today = new Date();
  $("spend-to").value = day(today);
  $("spend-from").value = day(new Date(today.getTime() - 13 * 86_400_000));
  const every = (fn, ms) => {
    void fn();
    timers.push(setInterval(() => void fn(), ms));
  };
  every(refreshStats, POLL_STATS_MS);
  every(refreshLag, POLL_SLOW_MS);
  every(refreshDlq, POLL_SLOW_MS);
  void refreshSpend();
  void refreshConversations();
}

function logout() {
  for (const t of timers.splice(0)) clearInterval(t);
  live?.close();
  live = null;
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
}

/** A failed poll shows on the page instead of being swallowed; a revoked token ends the session. */
function report(where, e) {
  if (e instanceof ApiError && e.status === 401) {
    logout();
    $("login-error").textContent = "The token expired or was revoked: log in again.";
    return;
  }
  where.textContent = `error: ${e.message}`;
}

// ---- live numbers ------------------------------------------------------------------------

async function refreshStats() {
  try {
    const s = await api("/v1/admin/stats");
    $("connections").textContent = String(s.connections.total);
    $("connections-detail").textContent = Object.entries(s.connections.byTransport).map(([k, v]) => `${k} ${v}`).join(" · ") || "no clients";
    $("deliveries-rate").textContent = s.deliveries.perSecond.toFixed(1);
    $("deliveries-total").textContent = `${s.deliveries.total} delivered by this edge`;
  } catch (e) {
    report($("connections-detail"), e);
  }
}

async function refreshLag() {
  try {
    const s = await api("/v1/admin/projections");
    $("lag-events").textContent = `${s.totals.lagEvents} events`;
    $("lag-seconds").textContent = `max ${s.totals.maxLagSeconds.toFixed(1)} s behind`;
    const body = $("lag-table").tBodies[0];
    body.replaceChildren(...s.partitions.map((p) => row([p.partition, p.checkpoint, p.applied, p.lagEvents, p.lagSeconds.toFixed(1)], [0, 2, 3, 4])));
  } catch (e) {
    report($("lag-seconds"), e);
  }
}

// ---- dead letters ------------------------------------------------------------------------

async function refreshDlq() {
  try {
    const { items } = await api("/v1/admin/dlq?limit=100");
    $("dlq-count").textContent = String(items.length);
    const body = $("dlq-table").tBodies[0];
    body.replaceChildren(
      ...items.map((d) => {
        const b = el("button", "Redrive");
        b.type = "button";
        b.dataset.id = d.id;
        b.addEventListener("click", () => void redrive(d.id, b));
        const origin = `${d.origin}@${d.originId}${d.tenant === null ? " (unattributed)" : ""}`;
        return row([d.id, d.group, origin, d.deliveries, d.at, d.error, b], [3]);
      }),
    );
  } catch (e) {
    report($("dlq-message"), e);
  }
}

async function redrive(id, button) {
  button.disabled = true;
  const [partition, entryId] = id.split("/");
  try {
    const r = await api(`/v1/admin/dlq/${encodeURIComponent(partition)}/${encodeURIComponent(entryId)}/redrive`, { method: "POST", body: {} });
    $("dlq-message").textContent = `redriven ${r.id}`;
  } catch (e) {
    $("dlq-message").textContent = `redrive of ${id} failed: ${e.message}`;
    button.disabled = false;
  }
  await refreshDlq();
}

// ---- spend -------------------------------------------------------------------------------

async function refreshSpend() {
  const from = $("spend-from").value;
  const to = $("spend-to").value;
  const q = (g) => api(`/v1/spend?from=${from}&to=${to}&groupBy=${g}`);
  try {
    const [byDay, byUser, byModel] = await Promise.all([q("day"), q("user"), q("model")]);
    drawChart(byDay.rows, from, to);
    for (const [table, rows, key] of [
      ["spend-user", byUser.rows, "user"],
      ["spend-model", byModel.rows, "model"],
    ]) {
      $(table).tBodies[0].replaceChildren(
        ...rows.map((r) => row([r[key] ?? "–", r.messages, r.inputTokens + r.outputTokens, money(r.costMicros)], [1, 2, 3])),
      );
    }
  } catch (e) {
    report($("spend-chart"), e);
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Cost per UTC day as bars, every day of the range present (days without spend are 0). */
function drawChart(rows, from, to) {
  const byDay = new Map(rows.map((r) => [String(r.day).slice(0, 10), r.costMicros]));
  const days = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`) && days.length < 366; t += 86_400_000) days.push(day(new Date(t)));
  const W = 720;
  const H = 180;
  const pad = { l: 60, r: 10, t: 10, b: 30 };
  const max = Math.max(1, ...days.map((d) => byDay.get(d) ?? 0));
  const bw = (W - pad.l - pad.r) / Math.max(1, days.length);
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "spend per day" });
  root.append(svg("text", { x: 4, y: pad.t + 8 }, money(max)), svg("text", { x: 4, y: H - pad.b }, "$0"));
  root.append(svg("line", { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, stroke: "#c5cad3" }));
  days.forEach((d, i) => {
    const v = byDay.get(d) ?? 0;
    const h = ((H - pad.t - pad.b) * v) / max;
    const bar = svg("rect", { class: "bar", x: pad.l + i * bw + 1, y: H - pad.b - h, width: Math.max(1, bw - 2), height: h });
    bar.append(svg("title", {}, `${d}: ${money(v)}`));
    root.append(bar);
    if (days.length <= 16 || i % Math.ceil(days.length / 16) === 0) root.append(svg("text", { x: pad.l + i * bw + 1, y: H - 12 }, d.slice(5)));
  });
  $("spend-chart").replaceChildren(root);
}

// ---- conversations -----------------------------------------------------------------------

async function refreshConversations() {
  try {
    const { items } = await api("/v1/conversations?limit=50");
    $("conversations").replaceChildren(
      ...items.map((c) => {
        const b = el("button", `${c.title} — ${c.ownerId} · ${c.status}`);
        b.type = "button";
        b.dataset.id = c.id;
        b.addEventListener("click", () => void openConversation(c.id));
        const li = el("li");
        li.append(b);
        return li;
      }),
    );
  } catch (e) {
    report($("viewer-status"), e);
  }
}

function compareOffsets(a, b) {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const x = BigInt(am) - BigInt(bm);
  if (x !== 0n) return x < 0n ? -1 : 1;
  const y = BigInt(as) - BigInt(bs);
  return y === 0n ? 0 : y < 0n ? -1 : 1;
}

/** A transcript built from events: one item per message, deltas appended as they arrive. */
function transcript(id) {
  const list = $("transcript");
  list.replaceChildren();
  const items = new Map();
  let last = "0";
  let count = 0;
  const item = (messageId, cls) => {
    let e = items.get(messageId);
    if (!e) {
      e = { li: el("li", undefined, cls), meta: el("span", "", "meta"), text: el("span", "") };
      e.li.append(e.meta, e.text);
      items.set(messageId, e);
      list.append(e.li);
    }
    return e;
  };
  return {
    get last() {
      return last;
    },
    get count() {
      return count;
    },
    /** Apply one envelope; events at or before the last one applied are ignored (replay ∪ live). */
    apply(ev) {
      if (compareOffsets(ev.offset, last) <= 0) return;
      last = ev.offset;
      count += 1;
      const d = ev.data ?? {};
      switch (ev.type) {
        case "conversation.created":
          $("viewer-title").textContent = `${d.title} (${id}) — owner ${d.ownerId}, model ${d.model}`;
          break;
        case "message.received": {
          const m = item(d.messageId, "user");
          m.meta.textContent = `user ${d.userId} · ${ev.at} · v${ev.version}`;
          m.text.textContent = d.text;
          break;
        }
        case "message.rejected": {
          const m = item(`rejected-${ev.offset}`, "note");
          m.text.textContent = `rejected ${d.clientMessageId}: ${d.code} ${d.message}`;
          break;
        }
        case "assistant.started": {
          const m = item(d.messageId, "assistant");
          m.meta.textContent = `assistant · ${d.model} · streaming…`;
          break;
        }
        case "assistant.delta":
          item(d.messageId, "assistant").text.textContent += d.text;
          break;
        case "assistant.completed": {
          const m = item(d.messageId, "assistant");
          m.text.textContent = d.text;
          m.meta.textContent = `assistant · completed (${d.finishReason}) · ${d.usage.inputTokens}+${d.usage.outputTokens} tokens · ${money(d.costMicros)}`;
          break;
        }
        case "assistant.cancelled":
        case "assistant.failed": {
          const m = item(d.messageId, "assistant");
          m.meta.textContent = `assistant · ${ev.type.slice("assistant.".length)}${d.code ? ` (${d.code})` : ""} · ${money(d.costMicros ?? 0)}`;
          break;
        }
        default: {
          const m = item(`other-${ev.offset}`, "note");
          m.text.textContent = ev.type;
        }
      }
      list.scrollTop = list.scrollHeight;
    },
  };
}

async function openConversation(id) {
  live?.close();
  live = null;
  $("viewer-title").textContent = id;
  const status = $("viewer-status");
  status.textContent = "replaying…";
  const t = transcript(id);
  try {
    // Replay: every page of the log (archive + Redis), then follow live from the last offset.
    let from = "0";
    for (;;) {
      const page = await api(`/v1/conversations/${encodeURIComponent(id)}/events?format=json&from=${from}&limit=500`);
      for (const ev of page.events) t.apply(ev);
      if (page.nextOffset === null) break;
      from = page.nextOffset;
    }
  } catch (e) {
    status.textContent = e instanceof ApiError && e.status === 404 ? "not found in your tenant" : `error: ${e.message}`;
    return;
  }
  const replayed = t.count;
  status.textContent = `replayed ${replayed} events · following live`;
  const source = new EventSource(`/v1/conversations/${encodeURIComponent(id)}/events?from=${t.last}&access_token=${encodeURIComponent(token)}`);
  live = source;
  const onEvent = (msg) => {
    t.apply(JSON.parse(msg.data));
    status.textContent = `replayed ${replayed} events · following live (${t.count - replayed} live)`;
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
  // EventSource reconnects by itself with Last-Event-ID; say so rather than hide it.
  source.onerror = () => {
    if (live === source) status.textContent = `replayed ${replayed} events · reconnecting…`;
  };
}

// ---- wiring ------------------------------------------------------------------------------

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void login($("token").value.trim());
});
$("logout").addEventListener("click", logout);
$("spend-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void refreshSpend();
});
$("conversations-refresh").addEventListener("click", () => void refreshConversations());
$("open-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("open-id").value.trim();
  if (id) void openConversation(id);
});
if (token) void login(token);
