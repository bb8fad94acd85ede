import { describe, expect, it } from "vitest";
import { assign, setup } from "xstate";
import { conversationDecider } from "../../actors/conversation/index.js";
import { decideAndEvolve, rejectionError } from "../../actors/decider.js";
import { decideWith, evolveWith } from "../../actors/machine-decider.js";
import { TributaryError } from "../../core/errors.js";

const at = "2026-11-21T10:00:00.000Z";

describe("decider helpers", () => {
  it("decideAndEvolve folds accepted events and keeps the state on a rejection", () => {
    const d = conversationDecider;
    const created = decideAndEvolve(d, d.parseCommand({ type: "create", at, ownerId: "u", tenantId: "t" }), d.initialState());
    expect(created.decision.ok).toBe(true);
    expect(d.versionOf(created.state)).toBe(1);
    const again = decideAndEvolve(d, d.parseCommand({ type: "create", at, ownerId: "x", tenantId: "t" }), created.state);
    expect(again.decision.ok).toBe(false);
    expect(again.state).toBe(created.state);
  });
  it("rejectionError carries code, status, details and Retry-After", () => {
    const e = rejectionError({ code: "QUOTA_EXCEEDED", message: "no", details: { resetsAt: "x" }, retryAfter: 30 });
    expect(e).toBeInstanceOf(TributaryError);
    expect(e.status).toBe(429);
    expect(e.retryAfter).toBe(30);
    expect(e.toBody("req")).toEqual({ error: { code: "QUOTA_EXCEEDED", message: "no", details: { resetsAt: "x" } }, requestId: "req" });
  });
});

describe("machine bridge guards its own rules", () => {
  const m = setup({
    types: { context: {} as { version: number }, events: {} as { type: "cmd.bad" } | { type: "known" } | { type: "unknown" } },
  }).createMachine({
    context: { version: 0 },
    on: {
      "cmd.bad": { actions: assign({ version: 99 }) },
      known: { actions: assign(({ context }) => ({ version: context.version + 1 })) },
    },
  });
  it("a command handler that changes state is a bug, reported loudly", () => {
    const s = m.resolveState({ value: {}, context: { version: 0 } });
    expect(() => decideWith(m, s, { type: "cmd.bad" })).toThrow(/changed the state/);
  });
  it("an event the machine cannot apply is refused as a permanent error", () => {
    const s = m.resolveState({ value: {}, context: { version: 0 } });
    expect(evolveWith(m, s, { type: "known" }).context.version).toBe(1);
    const err = (() => {
      try {
        evolveWith(m, s, { type: "unknown" });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TributaryError);
    expect((err as TributaryError).permanent).toBe(true);
  });
});
