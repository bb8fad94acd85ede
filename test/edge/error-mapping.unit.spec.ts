import { describe, expect, it } from "vitest";
import { TributaryError } from "../../core/errors.js";
import { toTributaryError } from "../../edge/http/context.js";

/** A dependency that drops the connection answers 503 UNAVAILABLE, even before the breaker opens. */
describe("toTributaryError", () => {
  it("maps connection failures of Redis and Postgres to UNAVAILABLE with Retry-After", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    const pgShutdown = Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
    const ioredis = new Error("Connection is closed.");
    const wrapped = new Error("query failed", { cause: refused });
    for (const e of [refused, pgShutdown, ioredis, wrapped]) {
      const t = toTributaryError(e);
      expect(t.code).toBe("UNAVAILABLE");
      expect(t.status).toBe(503);
      expect(t.retryAfter).toBe(1);
    }
  });
  it("keeps contract errors and hides other failures as INTERNAL", () => {
    const c = new TributaryError("CONFLICT", "x");
    expect(toTributaryError(c)).toBe(c);
    expect(toTributaryError(new TypeError("boom")).code).toBe("INTERNAL");
    expect(toTributaryError("weird").code).toBe("INTERNAL");
  });
});
