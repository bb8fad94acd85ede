export { EngineServer, ENGINE_DEFAULTS, type EngineOptions } from "./server.js";
export { EngineSession, SEPARATOR, type Handshake, type TransportName, type WsData } from "./session.js";
