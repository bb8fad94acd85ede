import { describe, expect, it } from "vitest";
import { backlogFromGroups, failedDependency } from "../../edge/gateway/index.js";

describe("backlogFromGroups", () => {
  it("sums lag and pending of the named group from the RESP2 XINFO GROUPS shape", () => {
    const reply = [
      ["name", "other", "consumers", 1, "pending", 50, "last-delivered-id", "0-0", "entries-read", 0, "lag", 50],
      ["name", "actors", "consumers", 2, "pending", 3, "last-delivered-id", "1-0", "entries-read", 5, "lag", 7],
    ];
    expect(backlogFromGroups(reply, "actors")).toBe(10);
  });

  it("is undefined when the group is missing or Redis cannot compute the lag", () => {
    expect(backlogFromGroups([], "actors")).toBeUndefined();
    expect(backlogFromGroups([["name", "actors", "pending", 1, "lag", null]], "actors")).toBeUndefined();
    expect(backlogFromGroups("nonsense", "actors")).toBeUndefined();
  });
});

describe("failedDependency", () => {
  it("recognises dead Postgres and Redis connections and nothing else", () => {
    expect(failedDependency(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }))).toBe("postgres");
    expect(failedDependency(Object.assign(new Error("x"), { code: "08006" }))).toBe("postgres");
    expect(failedDependency(new Error("Connection terminated unexpectedly"))).toBe("postgres");
    expect(failedDependency(new Error("Connection is closed."))).toBe("redis");
    expect(failedDependency(Object.assign(new Error("x"), { name: "MaxRetriesPerRequestError" }))).toBe("redis");
    expect(failedDependency(Object.assign(new Error("duplicate key"), { code: "23505" }))).toBeUndefined();
    expect(failedDependency(new TypeError("x is undefined"))).toBeUndefined();
    expect(failedDependency("string")).toBeUndefined();
  });
});
