import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { EngineServer } from "../../edge/engineio/server.js";
import type { EngineSession } from "../../edge/engineio/session.js";
import { closeListenSocket, createApp, listenApp, type us_listen_socket } from "../../edge/uws.js";

/**
 * The Engine.IO heartbeat runs on one shared tick per server, not a timer per session (issue 5:
 * idle connections must be cheap): sessions that answer are pinged again and again and stay; a
 * session that stops answering is closed with "ping timeout"; the upper layer's tick hook runs; and
 * the number of Node timers does not grow with the number of sessions. Real uWS, raw `ws` clients.
 */
/** Retry `check` every 20 ms until it passes (at most 10 s: the test then fails with its last error). */
async function until(check: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      check();
      return;
    } catch (e) {
      if (i >= 500) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("engine.io shared heartbeat", () => {
  let listen: us_listen_socket;
  let url: string;
  const closed = new Map<string, string>();
  const ticks = new Map<string, number>();
  let server: EngineServer;

  beforeAll(async () => {
    const app = createApp();
    server = new EngineServer(app, {
      pingInterval: 40,
      pingTimeout: 120,
      onConnection(s: EngineSession) {
        s.handlers = {
          message: () => undefined,
          close: (reason) => closed.set(s.id, reason),
          tick: () => ticks.set(s.id, (ticks.get(s.id) ?? 0) + 1),
        };
      },
    });
    const l = await listenApp(app, "127.0.0.1", 0);
    listen = l.socket;
    url = `ws://127.0.0.1:${l.port}/socket.io/?EIO=4&transport=websocket`;
  });

  afterAll(() => {
    server.closeAll();
    closeListenSocket(listen);
  });

  /** A raw client: records its sid and the pings it got; answers them while `answer` is true. */
  function client(): Promise<{ ws: WebSocket; sid: string; pings: () => number; mute(): void; gone: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let pings = 0;
      let answer = true;
      const gone = new Promise<void>((r) => ws.once("close", () => r()));
      ws.on("error", reject);
      ws.on("message", (raw) => {
        const m = String(raw);
        if (m.startsWith("0")) {
          const sid = (JSON.parse(m.slice(1)) as { sid: string }).sid;
          resolve({ ws, sid, pings: () => pings, mute: () => (answer = false), gone });
        } else if (m === "2") {
          pings++;
          if (answer) ws.send("3");
        }
      });
    });
  }

  it("pings every session from one timer; answering sessions stay, a silent one is closed", async () => {
    const before = timeouts();
    const clients = await Promise.all(Array.from({ length: 40 }, () => client()));
    // Forty sessions, at most one more Timeout (the shared tick), however many sessions there are.
    expect(timeouts()).toBeLessThanOrEqual(before + 1);
    await until(() => expect(Math.min(...clients.map((c) => c.pings()))).toBeGreaterThanOrEqual(3));
    for (const c of clients) expect(closed.has(c.sid)).toBe(false);
    // The upper layer's deadlines ride on the same tick.
    for (const c of clients) expect(ticks.get(c.sid) ?? 0).toBeGreaterThan(0);

    const silent = clients[0] as (typeof clients)[number];
    silent.mute();
    await silent.gone;
    await until(() => expect(closed.get(silent.sid)).toBe("ping timeout"));
    for (const c of clients.slice(1)) expect(closed.has(c.sid)).toBe(false);

    for (const c of clients.slice(1)) c.ws.close();
    await Promise.all(clients.map((c) => c.gone));
    await until(() => expect(server.sessions.size).toBe(0));
    // With no session left the shared tick stops too.
    await until(() => expect(timeouts()).toBeLessThanOrEqual(before));
  });
});
