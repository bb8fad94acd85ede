import { describe, expect, it } from "vitest";
import { fold } from "../../actors/decider.js";
import { budgetDecider, budgetView, ledgerDecider as decider, quotaView, reservationStatus } from "../../actors/ledger/index.js";
import { spec } from "../support/decider-spec.js";

const at = "2026-11-21T10:00:00.000Z";
const later = "2026-11-21T10:05:00.000Z";
const tomorrow = "2026-11-22T00:00:01.000Z";
const reset = (day: string, usedTokens = 0, usedMicros = 0, topUpConsumed = 0, resetsAt = `${nextDay(day)}T00:00:00.000Z`) => ({
  type: "ledger.reset",
  data: { day, resetsAt, usedTokens, usedMicros, topUpConsumed },
});
function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString().slice(0, 10);
}
const configured = (tier: string, dailyTokens: number, maxConcurrent: number, source = "default") => ({
  type: "ledger.configured",
  data: { tier, dailyTokens, maxConcurrent, source },
});
const reserved = (reservationId: string, tokens: number, when = at) => ({
  type: "ledger.reserved",
  data: { reservationId, tokens, expiresAt: new Date(Date.parse(when) + 2 * 3_600_000).toISOString() },
});
const day0 = [reset("2026-11-21"), configured("anonymous", 20_000, 1)];
const registered = [reset("2026-11-21"), configured("registered", 200_000, 4)];

describe("ledger: first use and daily reset", () => {
  it("a first reserve opens the day and configures the tier defaults", () => {
    spec(decider)
      .given([])
      .when({ type: "reserve", at, reservationId: "r1", tokens: 100 })
      .then([...day0, reserved("r1", 100)]);
  });
  it("uses the caller's tier for a new ledger", () => {
    spec(decider)
      .given([])
      .when({ type: "reserve", at, reservationId: "r1", tokens: 100, tier: "registered" })
      .then([...registered, reserved("r1", 100)]);
  });
  it("follows the caller's tier upward while limits are defaults, never downward", () => {
    spec(decider)
      .given(day0)
      .when({ type: "reserve", at, reservationId: "r1", tokens: 100, tier: "privileged" })
      .then([configured("privileged", 2_000_000, 16, "upgrade"), reserved("r1", 100)]);
    spec(decider).given(registered).when({ type: "reserve", at, reservationId: "r1", tokens: 100, tier: "anonymous" }).then([reserved("r1", 100)]);
  });
  it("an admin-configured ledger does not follow the token's tier", () => {
    spec(decider)
      .given([reset("2026-11-21"), configured("registered", 500, 2, "admin")])
      .when({ type: "reserve", at, reservationId: "r1", tokens: 100, tier: "privileged" })
      .then([reserved("r1", 100)]);
  });
  it("resets at the UTC day boundary: usage back to zero, open reservations carried over", () => {
    const given = [
      ...day0,
      reserved("r1", 100),
      { type: "ledger.committed", data: { reservationId: "r1", tokens: 60, costMicros: 9, reservedTokens: 100, releasedTokens: 40 } },
      { type: "ledger.toppedUp", data: { tokens: 5 } },
    ];
    const s = spec(decider)
      .given(given)
      .when({ type: "topUp", at: tomorrow, tokens: 10 })
      .then([reset("2026-11-22", 60, 9, 0), { type: "ledger.toppedUp", data: { tokens: 10 } }]);
    expect(s.context).toMatchObject({ used: 0, usedOther: 0, topUp: 15, day: "2026-11-22", resetsAt: "2026-11-23T00:00:00.000Z" });
  });
  it("top-ups pay only for usage above the daily limit", () => {
    const given = [
      reset("2026-11-21"),
      configured("registered", 100, 4, "admin"),
      { type: "ledger.toppedUp", data: { tokens: 50 } },
      reserved("r1", 130),
      { type: "ledger.committed", data: { reservationId: "r1", tokens: 130, costMicros: 1, reservedTokens: 130, releasedTokens: 0 } },
    ];
    const s = spec(decider).given(given).when({ type: "expire", at: tomorrow }).then([reset("2026-11-22", 130, 1, 30)]);
    expect(s.context.topUp).toBe(20);
  });
  it("a command stamped with an earlier day does not move the day back", () => {
    spec(decider)
      .given([reset("2026-11-22"), configured("anonymous", 20_000, 1)])
      .when({ type: "reserve", at, reservationId: "r1", tokens: 1 })
      .then([reserved("r1", 1)]);
  });
});

describe("ledger: configure", () => {
  it("sets a tier with its defaults", () => {
    spec(decider).given(day0).when({ type: "configure", at, tier: "registered" }).then([configured("registered", 200_000, 4, "admin")]);
  });
  it("overrides limits and keeps the tier", () => {
    spec(decider).given(day0).when({ type: "configure", at, dailyTokens: 1234, maxConcurrent: 3 }).then([configured("anonymous", 1234, 3, "admin")]);
  });
  it("configures a new ledger (opening the day first)", () => {
    spec(decider).given([]).when({ type: "configure", at, tier: "privileged" }).then([reset("2026-11-21"), configured("privileged", 2_000_000, 16, "admin")]);
  });
  it("the same admin configuration again is a no-op", () => {
    spec(decider).given([reset("2026-11-21"), configured("registered", 200_000, 4, "admin")]).when({ type: "configure", at, tier: "registered" }).then([]);
  });
  it("rejects invalid limits", () => {
    expect(() => spec(decider).given([]).when({ type: "configure", at, maxConcurrent: 0 })).toThrow(/invalid ledger command/);
    expect(() => spec(decider).given([]).when({ type: "configure", at, dailyTokens: -1 })).toThrow();
  });
});

describe("ledger: topUp", () => {
  it("adds to the top-up balance", () => {
    const s = spec(decider).given(day0).when({ type: "topUp", at, tokens: 500 }).then([{ type: "ledger.toppedUp", data: { tokens: 500 } }]);
    expect(quotaView(s, at).remaining.tokens).toBe(20_500);
  });
  it("rejects zero or fractional top-ups", () => {
    expect(() => spec(decider).given(day0).when({ type: "topUp", at, tokens: 0 })).toThrow();
    expect(() => spec(decider).given(day0).when({ type: "topUp", at, tokens: 1.5 })).toThrow();
  });
});

describe("ledger: reserve", () => {
  it("reserves within the limit", () => {
    spec(decider).given(registered).when({ type: "reserve", at, reservationId: "r1", tokens: 1000, conversationId: "c1" }).then([
      { ...reserved("r1", 1000), data: { ...reserved("r1", 1000).data, conversationId: "c1" } },
    ]);
  });
  it("is idempotent by reservation id (open or settled)", () => {
    spec(decider).given([...registered, reserved("r1", 1000)]).when({ type: "reserve", at, reservationId: "r1", tokens: 1000 }).then([]);
    const s = fold(decider, [...registered, reserved("r1", 1000)].map((e) => decider.parseEvent(e)));
    expect(reservationStatus(s, "r1")).toBe("open");
    expect(reservationStatus(s, "nope")).toBeUndefined();
  });
  it("QUOTA_EXCEEDED when used + reserved + tokens > limit + top-ups", () => {
    spec(decider)
      .given([...registered, reserved("r1", 150_000)])
      .when({ type: "reserve", at, reservationId: "r2", tokens: 50_001 })
      .thenRejects("QUOTA_EXCEEDED");
    spec(decider).given([...registered, reserved("r1", 150_000)]).when({ type: "reserve", at, reservationId: "r2", tokens: 50_000 }).then([reserved("r2", 50_000)]);
    spec(decider)
      .given([...registered, reserved("r1", 150_000), { type: "ledger.toppedUp", data: { tokens: 1 } }])
      .when({ type: "reserve", at, reservationId: "r2", tokens: 50_001 })
      .then([reserved("r2", 50_001)]);
  });
  it("QUOTA_EXCEEDED carries Retry-After until the reset", () => {
    const d = decider.decide(decider.parseCommand({ type: "reserve", at, reservationId: "r2", tokens: 20_001 }), fold(decider, day0.map((e) => decider.parseEvent(e))));
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.rejection.code).toBe("QUOTA_EXCEEDED");
      expect(d.rejection.retryAfter).toBe(14 * 3600);
    }
  });
  it("CONCURRENCY_LIMIT when open reservations reach maxConcurrent", () => {
    spec(decider).given([...day0, reserved("r1", 10)]).when({ type: "reserve", at, reservationId: "r2", tokens: 10 }).thenRejects("CONCURRENCY_LIMIT");
  });
  it("an orphaned reservation past its expiry is released by the next reserve", () => {
    const late = "2026-11-21T12:00:00.000Z";
    spec(decider)
      .given([...day0, reserved("r1", 10)])
      .when({ type: "reserve", at: late, reservationId: "r2", tokens: 10 })
      .then([{ type: "ledger.released", data: { reservationId: "r1", tokens: 10, reason: "expired" } }, reserved("r2", 10, late)]);
  });
});

describe("ledger: commit", () => {
  const open = [...registered, reserved("r1", 1000)];
  it("commits the usage and releases the rest", () => {
    const s = spec(decider)
      .given(open)
      .when({ type: "commit", at: later, reservationId: "r1", tokens: 300, costMicros: 42 })
      .then([{ type: "ledger.committed", data: { reservationId: "r1", tokens: 300, costMicros: 42, reservedTokens: 1000, releasedTokens: 700 } }]);
    expect(quotaView(s, later)).toEqual({
      tier: "registered",
      limits: { dailyTokens: 200_000, maxConcurrent: 4 },
      used: { tokens: 300, costMicros: 42 },
      reserved: { tokens: 0 },
      remaining: { tokens: 199_700 },
      resetsAt: "2026-11-22T00:00:00.000Z",
    });
    expect(reservationStatus(s, "r1")).toBe("committed");
  });
  it("clamps usage above the reservation to it", () => {
    spec(decider)
      .given(open)
      .when({ type: "commit", at: later, reservationId: "r1", tokens: 1200, costMicros: 42 })
      .then([
        {
          type: "ledger.committed",
          data: { reservationId: "r1", tokens: 1000, costMicros: 42, reservedTokens: 1000, releasedTokens: 0, requestedTokens: 1200 },
        },
      ]);
  });
  it("is idempotent", () => {
    const committed = { type: "ledger.committed", data: { reservationId: "r1", tokens: 3, costMicros: 1, reservedTokens: 1000, releasedTokens: 997 } };
    spec(decider).given([...open, committed]).when({ type: "commit", at: later, reservationId: "r1", tokens: 3, costMicros: 1 }).then([]);
  });
  it("after an explicit release is a no-op", () => {
    const released = { type: "ledger.released", data: { reservationId: "r1", tokens: 1000, reason: "released" } };
    spec(decider).given([...open, released]).when({ type: "commit", at: later, reservationId: "r1", tokens: 3, costMicros: 1 }).then([]);
  });
  it("after expiry bills late, within the headroom left", () => {
    const expired = { type: "ledger.released", data: { reservationId: "r1", tokens: 10, reason: "expired" } };
    spec(decider)
      .given([...day0, reserved("r1", 10), expired, reserved("r2", 19_995)])
      .when({ type: "commit", at: later, reservationId: "r1", tokens: 8, costMicros: 3 })
      .then([
        {
          type: "ledger.committed",
          data: { reservationId: "r1", tokens: 5, costMicros: 3, reservedTokens: 0, releasedTokens: 0, requestedTokens: 8, late: true },
        },
      ]);
  });
});

describe("ledger: release and expire", () => {
  it("releases an open reservation", () => {
    const s = spec(decider)
      .given([...day0, reserved("r1", 10)])
      .when({ type: "release", at, reservationId: "r1" })
      .then([{ type: "ledger.released", data: { reservationId: "r1", tokens: 10, reason: "released" } }]);
    expect(s.context.reserved).toBe(0);
  });
  it("releasing what is not open is a no-op", () => {
    spec(decider).given(day0).when({ type: "release", at, reservationId: "r1" }).then([]);
  });
  it("expire releases only reservations past their expiry", () => {
    spec(decider)
      .given([...registered, reserved("r1", 10), reserved("r2", 10, "2026-11-21T10:20:00.000Z")])
      .when({ type: "expire", at: "2026-11-21T12:01:00.000Z" })
      .then([{ type: "ledger.released", data: { reservationId: "r1", tokens: 10, reason: "expired" } }]);
  });
});

describe("ledger: quotaView", () => {
  it("for an unknown user shows the tier defaults", () => {
    expect(quotaView(decider.initialState(), at, { fallbackTier: "registered" })).toEqual({
      tier: "registered",
      limits: { dailyTokens: 200_000, maxConcurrent: 4 },
      used: { tokens: 0, costMicros: 0 },
      reserved: { tokens: 0 },
      remaining: { tokens: 200_000 },
      resetsAt: "2026-11-22T00:00:00.000Z",
    });
  });
  it("shows a new day before any event opened it", () => {
    const s = fold(decider, [...day0, reserved("r1", 10), { type: "ledger.committed", data: { reservationId: "r1", tokens: 10, costMicros: 1, reservedTokens: 10, releasedTokens: 0 } }].map((e) => decider.parseEvent(e)));
    expect(quotaView(s, at).used.tokens).toBe(10);
    expect(quotaView(s, tomorrow)).toMatchObject({ used: { tokens: 0, costMicros: 0 }, remaining: { tokens: 20_000 }, resetsAt: "2026-11-23T00:00:00.000Z" });
  });
});

describe("project budget", () => {
  const b0 = [
    { type: "budget.reset", data: { day: "2026-11-21", resetsAt: "2026-11-22T00:00:00.000Z", usedMicros: 0, usedTokens: 0, topUpConsumed: 0 } },
  ];
  const unlimited = { type: "budget.configured", data: { dailyMicros: null, maxConcurrent: null, source: "default" } };
  const capped = { type: "budget.configured", data: { dailyMicros: 1000, maxConcurrent: null, source: "admin" } };
  const bReserved = (reservationId: string, costMicros: number) => ({
    type: "budget.reserved",
    data: { reservationId, costMicros, expiresAt: "2026-11-21T12:00:00.000Z" },
  });
  it("is unlimited until configured", () => {
    spec(budgetDecider).given([]).when({ type: "reserve", at, reservationId: "r1", costMicros: 10 ** 12 }).then([...b0, unlimited, bReserved("r1", 10 ** 12)]);
  });
  it("configure sets a daily cap in micro-units; null removes it", () => {
    spec(budgetDecider).given([...b0, unlimited]).when({ type: "configure", at, dailyMicros: 1000 }).then([capped]);
    spec(budgetDecider)
      .given([...b0, capped])
      .when({ type: "configure", at, dailyMicros: null })
      .then([{ type: "budget.configured", data: { dailyMicros: null, maxConcurrent: null, source: "admin" } }]);
  });
  it("QUOTA_EXCEEDED over the cap; a top-up makes room", () => {
    spec(budgetDecider).given([...b0, capped, bReserved("r1", 600)]).when({ type: "reserve", at, reservationId: "r2", costMicros: 401 }).thenRejects("QUOTA_EXCEEDED");
    spec(budgetDecider)
      .given([...b0, capped, bReserved("r1", 600), { type: "budget.toppedUp", data: { costMicros: 1 } }])
      .when({ type: "reserve", at, reservationId: "r2", costMicros: 401 })
      .then([bReserved("r2", 401)]);
  });
  it("topUp, commit (clamped) and release", () => {
    spec(budgetDecider).given([...b0, capped]).when({ type: "topUp", at, costMicros: 5 }).then([{ type: "budget.toppedUp", data: { costMicros: 5 } }]);
    const s = spec(budgetDecider)
      .given([...b0, capped, bReserved("r1", 600)])
      .when({ type: "commit", at, reservationId: "r1", costMicros: 700, tokens: 90 })
      .then([
        {
          type: "budget.committed",
          data: { reservationId: "r1", costMicros: 600, tokens: 90, reservedMicros: 600, releasedMicros: 0, requestedMicros: 700 },
        },
      ]);
    expect(budgetView(s, at)).toMatchObject({ used: { costMicros: 600, tokens: 90 }, remaining: { costMicros: 400 } });
    spec(budgetDecider)
      .given([...b0, capped, bReserved("r1", 600)])
      .when({ type: "release", at, reservationId: "r1" })
      .then([{ type: "budget.released", data: { reservationId: "r1", costMicros: 600, reason: "released" } }]);
  });
  it("expire and CONCURRENCY_LIMIT", () => {
    const conc = { type: "budget.configured", data: { dailyMicros: null, maxConcurrent: 1, source: "admin" } };
    spec(budgetDecider).given([...b0, conc, bReserved("r1", 1)]).when({ type: "reserve", at, reservationId: "r2", costMicros: 1 }).thenRejects("CONCURRENCY_LIMIT");
    spec(budgetDecider)
      .given([...b0, conc, bReserved("r1", 1)])
      .when({ type: "expire", at: "2026-11-21T12:00:00.000Z" })
      .then([{ type: "budget.released", data: { reservationId: "r1", costMicros: 1, reason: "expired" } }]);
  });
  it("refuses user-ledger events", () => {
    expect(() => fold(budgetDecider, [budgetDecider.parseEvent(configured("anonymous", 1, 1))])).toThrow(/cannot apply/);
  });
});

describe("ledger: snapshots", () => {
  it("round-trip through JSON and decide the same", () => {
    const s = fold(decider, [...registered, reserved("r1", 1000)].map((e) => decider.parseEvent(e)));
    const back = decider.fromSnapshot(JSON.parse(JSON.stringify(decider.toSnapshot(s))));
    expect(back.context).toEqual(s.context);
    const cmd = decider.parseCommand({ type: "reserve", at, reservationId: "r2", tokens: 5 });
    expect(decider.decide(cmd, back)).toEqual(decider.decide(cmd, s));
  });
});
