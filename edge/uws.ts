import uWS from "uWebSockets.js";

/**
 * The one place that imports uWebSockets.js. Everything else in edge/ takes the app and its types from
 * here, so swapping the build (the pinned v20.30 unofficial package for an official v20.5x release, see
 * docs/edge-http.md) touches one line of package.json and, at most, this file.
 *
 * The pinned package silently falls back to a slow pure-JS implementation when its native binary
 * does not match the running Node ABI. A chat edge on the fallback would "work" at a fraction of the
 * throughput the design relies on, so start-up refuses it with one clear line instead.
 */
export type {
  HttpRequest,
  HttpResponse,
  RecognizedString,
  TemplatedApp,
  WebSocket,
  WebSocketBehavior,
  us_listen_socket,
  us_socket_context_t,
} from "uWebSockets.js";

export class UwsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UwsUnavailableError";
  }
}

/** True when the loaded module is the native addon (its functions are `[native code]`). */
export function isNativeUws(): boolean {
  const app: unknown = (uWS as { App?: unknown }).App;
  return typeof app === "function" && /\[native code\]/.test(Function.prototype.toString.call(app));
}

/** Throws UwsUnavailableError (one line) unless the native binary loaded. Call once at start-up. */
export function assertNativeUws(): void {
  if (isNativeUws()) return;
  throw new UwsUnavailableError(
    `uWebSockets.js native binary did not load for node ${process.version} (${process.platform}-${process.arch}, ABI ${process.versions.modules}); ` +
      `install a uWebSockets.js build for this Node version (docs/edge-http.md)`,
  );
}

/** A fresh non-TLS app (TLS terminates in front of the edge). */
export function createApp(): uWS.TemplatedApp {
  assertNativeUws();
  return uWS.App();
}

/** Listen and resolve with the listen socket and the real port (port 0 = any free port). */
export function listenApp(app: uWS.TemplatedApp, host: string, port: number): Promise<{ socket: uWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket === false) {
        reject(new Error(`cannot listen on ${host}:${port}`));
        return;
      }
      resolve({ socket, port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) });
    });
  });
}

/** Stop accepting connections. Existing connections finish on their own (or are closed by their owners). */
export function closeListenSocket(socket: uWS.us_listen_socket): void {
  uWS.us_listen_socket_close(socket);
}
