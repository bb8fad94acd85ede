export { HttpContext, toTributaryError, type ResponseOptions } from "./context.js";
export { startBody, validate, isJsonContentType, payloadTooLarge, type BodyOptions } from "./body.js";
export { mount, authenticate, paramCount, type Method, type RouteEnv, type RouteSpec } from "./route.js";
export { statusLine } from "./status.js";
