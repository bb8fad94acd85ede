import { describe, expect, it } from "vitest";
import { fold } from "../../actors/decider.js";
import { sessionDecider as decider, sessionStatus } from "../../actors/session/index.js";
import { spec } from "../support/decider-spec.js";

const at = "2026-11-21T10:00:00.000Z";
const openCmd = { type: "open", at, sessionId: "s1", userId: "u1", tenantId: "t1", tier: "anonymous", transport: "sse" };
const opened = { type: "session.opened", data: { sessionId: "s1", userId: "u1", tenantId: "t1", tier: "anonymous", transport: "sse" } };
const closed = { type: "session.closed", data: { sessionId: "s1", reason: "client" } };

describe("session: open", () => {
  it("opens", () => {
    const s = spec(decider).given([]).when(openCmd).then([opened]);
    expect(sessionStatus(s)).toBe("open");
  });
  it("a repeated open of the same session is a no-op; another owner is a CONFLICT", () => {
    spec(decider).given([opened]).when(openCmd).then([]);
    spec(decider).given([opened]).when({ ...openCmd, userId: "u2" }).thenRejects("CONFLICT");
  });
  it("after close is a CONFLICT", () => {
    spec(decider).given([opened, closed]).when(openCmd).thenRejects("CONFLICT");
  });
  it("validates the tier", () => {
    expect(() => spec(decider).given([]).when({ ...openCmd, tier: "gold" })).toThrow(/invalid session command/);
  });
});

describe("session: resume", () => {
  it("records the new transport", () => {
    const s = spec(decider)
      .given([opened])
      .when({ type: "resume", at, transport: "socket.io-websocket" })
      .then([{ type: "session.resumed", data: { sessionId: "s1", transport: "socket.io-websocket" } }]);
    expect(s.context).toMatchObject({ transport: "socket.io-websocket", resumes: 1 });
  });
  it("unknown session is NOT_FOUND, closed session a CONFLICT", () => {
    spec(decider).given([]).when({ type: "resume", at, transport: "sse" }).thenRejects("NOT_FOUND");
    spec(decider).given([opened, closed]).when({ type: "resume", at, transport: "sse" }).thenRejects("CONFLICT");
  });
});

describe("session: close", () => {
  it("closes with a reason", () => {
    const s = spec(decider).given([opened]).when({ type: "close", at, reason: "client" }).then([closed]);
    expect(sessionStatus(s)).toBe("closed");
    expect(s.context.closeReason).toBe("client");
  });
  it("closing twice is a no-op; unknown session NOT_FOUND", () => {
    spec(decider).given([opened, closed]).when({ type: "close", at, reason: "timeout" }).then([]);
    spec(decider).given([]).when({ type: "close", at, reason: "client" }).thenRejects("NOT_FOUND");
  });
});

describe("session: upgradeTier", () => {
  it("anonymous → registered", () => {
    const s = spec(decider)
      .given([opened])
      .when({ type: "upgradeTier", at, tier: "registered" })
      .then([{ type: "session.tierUpgraded", data: { sessionId: "s1", userId: "u1", from: "anonymous", to: "registered" } }]);
    expect(s.context.tier).toBe("registered");
  });
  it("the same tier is a no-op", () => {
    spec(decider).given([opened]).when({ type: "upgradeTier", at, tier: "anonymous" }).then([]);
  });
  it("downgrades and privileged are FORBIDDEN", () => {
    const upgraded = { type: "session.tierUpgraded", data: { sessionId: "s1", userId: "u1", from: "anonymous", to: "registered" } };
    spec(decider).given([opened, upgraded]).when({ type: "upgradeTier", at, tier: "anonymous" }).thenRejects("FORBIDDEN");
    spec(decider).given([opened]).when({ type: "upgradeTier", at, tier: "privileged" }).thenRejects("FORBIDDEN");
  });
  it("on a closed session is a CONFLICT, unknown NOT_FOUND", () => {
    spec(decider).given([opened, closed]).when({ type: "upgradeTier", at, tier: "registered" }).thenRejects("CONFLICT");
    spec(decider).given([]).when({ type: "upgradeTier", at, tier: "registered" }).thenRejects("NOT_FOUND");
  });
});

describe("session: snapshots", () => {
  it("round-trip through JSON", () => {
    const s = fold(decider, [opened].map((e) => decider.parseEvent(e)));
    const back = decider.fromSnapshot(JSON.parse(JSON.stringify(decider.toSnapshot(s))));
    expect(back.value).toEqual(s.value);
    expect(back.context).toEqual(s.context);
    expect(decider.versionOf(back)).toBe(1);
  });
});
