import { errorMessage } from "../core/errors.js";
import { offsetMillis } from "../core/envelope.js";
import type { EdgeDeps } from "./deps.js";
import { Fanout, type OlderEventsReader } from "./fanout/index.js";
import { eventsJsonHandler, mountEventsJsonRoute, mountHttpRoutes, mountNotFound } from "./routes/index.js";
import { attachSocketIo, type SocketIoServer, type SocketIoSessionHooks } from "./socketio/index.js";
import { attachSse, type SseServer } from "./sse/index.js";
import { closeListenSocket, createApp, listenApp, type TemplatedApp, type us_listen_socket } from "./uws.js";

/**
 * One edge process: HTTP routes, SSE and Socket.IO on one uWS app (DESIGN §Edge), sharing one
 * fan-out that reads the streams its clients follow.
 *
 *   const edge = createEdgeServer(deps);
 *   const port = await edge.listen("127.0.0.1", 0);
 *   …
 *   await edge.close();
 */
export interface EdgeServerOptions {
  /** Serve SSE [true]. */
  sse?: boolean;
  /** Serve Socket.IO at /socket.io/ [true]. */
  socketIo?: boolean;
  /** Session actor hooks for Socket.IO connections (issue 5 item 7). */
  sessions?: SocketIoSessionHooks;
  /** The archive seam for resumes older than Redis's window (I6). */
  olderEvents?: OlderEventsReader;
}

export interface EdgeServer {
  app: TemplatedApp;
  fanout: Fanout;
  /** Resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Stop listening, close client streams, stop background work. Idempotent. */
  close(): Promise<void>;
}

export function createEdgeServer(deps: EdgeDeps, opts: EdgeServerOptions = {}): EdgeServer {
  const app = createApp();
  const fanout = new Fanout({
    redis: deps.redis,
    partitions: deps.config.PARTITIONS,
    publish: (topic, frame) => {
      app.publish(topic, frame);
    },
    log: deps.log,
    ...(opts.olderEvents ? { olderEvents: opts.olderEvents } : {}),
  });

  mountHttpRoutes(app, deps);
  // One handler per method and pattern in uWS: with SSE on, its route owns the events path and
  // hands `format=json` back to ours.
  let sse: SseServer | undefined;
  if (opts.sse ?? true) {
    sse = attachSse(app, deps, {
      fanout,
      authenticator: deps.auth,
      access: deps.access,
      metrics: deps.metrics,
      log: deps.log,
      breaker: deps.gateway.breaker,
      eventsJson: eventsJsonHandler(deps),
    });
  } else {
    mountEventsJsonRoute(app, deps);
  }
  let sio: SocketIoServer | undefined;
  if (opts.socketIo ?? true) {
    sio = attachSocketIo(app, {
      fanout,
      auth: deps.auth,
      access: deps.access,
      commands: deps.commands,
      redis: deps.redis,
      log: deps.log,
      metrics: deps.metrics,
      ...(opts.sessions ? { sessions: opts.sessions } : {}),
      // The whole gate (breaker, backlog, rate limit), as HTTP: switching transport dodges nothing.
      admitMessage: (principal, conversationId) => deps.gateway.admitMessage(principal, conversationId),
    });
  }
  mountNotFound(app, deps);
  // Append → hand-off lag of live events, once per event: every transport gets the same frame from
  // the same publish, so one observation stands for all of them. The append time is the millisecond
  // part of the entry id (the append script takes it from Redis's TIME), read without parsing a
  // date; the histogram child is bound once so the per-event path hashes no label set.
  const lag = deps.metrics.deliveryLag.labels({ transport: "fanout" });
  const stopLag = fanout.onPublish((env) => {
    const at = offsetMillis(env.offset);
    if (at > 0) lag.observe(Math.max(0, Date.now() - at));
  });

  let listenSocket: us_listen_socket | undefined;
  let closed = false;
  deps.gateway.breaker.start();

  return {
    app,
    fanout,
    async listen(host, port) {
      // Know the dependencies' state before the first request instead of assuming them healthy.
      await deps.gateway.breaker.probe();
      const bound = await listenApp(app, host, port);
      listenSocket = bound.socket;
      deps.log.info({ host, port: bound.port }, "edge listening");
      return bound.port;
    },
    async close() {
      if (closed) return;
      closed = true;
      deps.gateway.breaker.stop();
      if (listenSocket) closeListenSocket(listenSocket);
      listenSocket = undefined;
      stopLag();
      sse?.close();
      sio?.close();
      // Session records written as the connections closed must reach Redis before it quits, or a
      // client moving to another node could not recover its session.
      await sio?.flush().catch((e: unknown) => deps.log.warn({ err: errorMessage(e) }, "socket.io session records not flushed"));
      await fanout.stop().catch((e: unknown) => deps.log.warn({ err: errorMessage(e) }, "fan-out did not stop cleanly"));
      // Official builds ≥ v20.4x can close every open connection; the pinned build cannot (the
      // sockets then close as their clients leave). Feature-detected so both builds work.
      const closeAll = (app as unknown as { close?: () => void }).close;
      if (typeof closeAll === "function") closeAll.call(app);
    },
  };
}

