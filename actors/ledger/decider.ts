import { getInitialSnapshot, type SnapshotFrom } from "xstate";
import { z } from "zod";
import { TributaryError } from "../../core/errors.js";
import { LedgerEvents, isLedgerEventType, type LedgerEvent } from "../../core/events/ledger.js";
import type { Tier } from "../../core/events/session.js";
import { accept, type Decider, type Decision } from "../decider.js";
import { decideWith, restoreWith } from "../machine-decider.js";
import { deriveEvolve } from "../machine-evolve.js";
import { BudgetCommand, LedgerCommand } from "./commands.js";
import { budgetToStored, storedToNeutral, userToStored } from "./events.js";
import { createLedgerMachine, type LedgerMachine, type LedgerMachineOptions, type NeutralCommand, type NeutralEvent } from "./machine.js";
import { LedgerContext, settlementOf, type Settlement } from "./state.js";

export type LedgerState = SnapshotFrom<LedgerMachine>;
export type UserLedgerDecider = Decider<LedgerCommand, LedgerEvent, LedgerState> & { machine: LedgerMachine };
export type BudgetDecider = Decider<BudgetCommand, LedgerEvent, LedgerState> & { machine: LedgerMachine };

const Snapshot = z.object({ value: z.enum(["unconfigured", "active"]), context: LedgerContext }).loose();

function neutralOfUser(c: LedgerCommand): NeutralCommand {
  switch (c.type) {
    case "configure":
      return { type: "cmd.configure", at: c.at, tier: c.tier, limit: c.dailyTokens, maxConcurrent: c.maxConcurrent };
    case "topUp":
      return { type: "cmd.topUp", at: c.at, amount: c.tokens };
    case "reserve":
      return { type: "cmd.reserve", at: c.at, reservationId: c.reservationId, amount: c.tokens, conversationId: c.conversationId };
    case "commit":
      return { type: "cmd.commit", at: c.at, reservationId: c.reservationId, amount: c.tokens, other: c.costMicros };
    case "release":
      return { type: "cmd.release", at: c.at, reservationId: c.reservationId };
    case "expire":
      return { type: "cmd.expire", at: c.at };
  }
}

function neutralOfBudget(c: BudgetCommand): NeutralCommand {
  switch (c.type) {
    case "configure":
      return { type: "cmd.configure", at: c.at, tier: undefined, limit: c.dailyMicros, maxConcurrent: c.maxConcurrent };
    case "topUp":
      return { type: "cmd.topUp", at: c.at, amount: c.costMicros };
    case "reserve":
      return { type: "cmd.reserve", at: c.at, reservationId: c.reservationId, amount: c.costMicros, conversationId: c.conversationId };
    case "commit":
      return { type: "cmd.commit", at: c.at, reservationId: c.reservationId, amount: c.costMicros, other: c.tokens };
    case "release":
      return { type: "cmd.release", at: c.at, reservationId: c.reservationId };
    case "expire":
      return { type: "cmd.expire", at: c.at };
  }
}

function build<C extends { type: string; at: string }>(
  scope: "user" | "project",
  opts: Omit<LedgerMachineOptions, "scope">,
  schema: z.ZodType<C>,
  toNeutral: (c: C) => NeutralCommand,
  tierHint: (c: C) => Tier | undefined,
) {
  const machine = createLedgerMachine({ ...opts, scope });
  const toStored = scope === "user" ? userToStored : budgetToStored;
  const name = scope === "user" ? "ledger" : "budget";
  // Folds without the interpreter; the machine still decides every command (machine-evolve.ts).
  const evolveNeutral = deriveEvolve<LedgerState>(machine);

  const evolve = (state: LedgerState, event: LedgerEvent): LedgerState => {
    const neutral = storedToNeutral(event, scope);
    if (neutral === undefined) throw new TributaryError("BAD_REQUEST", `a ${name} cannot apply ${event.type}`, { permanent: true });
    return evolveNeutral(state, neutral);
  };

  const decide = (command: C, state: LedgerState): Decision<LedgerEvent> => {
    // Step 1: what must hold before the command (new day, first configuration, tier upgrade, expiry).
    const housekeep: NeutralCommand = {
      type: "cmd.housekeep",
      at: command.at,
      tierHint: tierHint(command),
      expire: command.type === "reserve" || command.type === "expire",
      configuring: command.type === "configure",
    };
    const pre = decideWith<NeutralEvent>(machine, state, housekeep);
    if (!pre.ok) return pre;
    let temp = state;
    for (const e of pre.events) temp = evolveNeutral(temp, e);
    // Step 2: the command itself, on that state.
    const main = decideWith<NeutralEvent>(machine, temp, toNeutral(command));
    if (!main.ok) return main;
    const events = [...pre.events, ...main.events];
    if (events.length === 0) return accept([]);
    // The housekeeping events are folded already: hand the state after all of them to the runtime,
    // so it does not fold them again (a new ledger's reset + configuration, each an XState step).
    for (const e of main.events) temp = evolveNeutral(temp, e);
    return { ok: true, events: events.map(toStored), next: temp };
  };

  return {
    machine,
    initialState: () => getInitialSnapshot(machine),
    decide,
    evolve,
    parseCommand(input: unknown): C {
      const r = schema.safeParse(input);
      if (!r.success) throw new TributaryError("VALIDATION_FAILED", `invalid ${name} command`, { details: r.error.issues, permanent: true });
      return r.data;
    },
    parseEvent(raw: { type: string; data: unknown }): LedgerEvent {
      if (!isLedgerEventType(raw.type)) throw new TributaryError("BAD_REQUEST", `not a ledger event: ${raw.type}`, { permanent: true });
      const r = LedgerEvents[raw.type].safeParse(raw.data);
      if (!r.success) throw new TributaryError("BAD_REQUEST", `malformed ${raw.type} event`, { details: r.error.issues, permanent: true });
      return { type: raw.type, data: r.data } as LedgerEvent;
    },
    toSnapshot: (state: LedgerState) => machine.getPersistedSnapshot(state),
    fromSnapshot: (json: unknown): LedgerState => restoreWith<LedgerState>(machine, Snapshot, json, name),
    versionOf: (state: LedgerState) => state.context.version,
  };
}

/** The user ledger (tokens per UTC day, concurrent replies), one per tenant+user. */
export function createLedgerDecider(opts: Omit<LedgerMachineOptions, "scope"> = {}): UserLedgerDecider {
  return build<LedgerCommand>("user", opts, LedgerCommand, neutralOfUser, (c) =>
    // configure's tier is the new setting, not the caller's token tier.
    c.type !== "configure" && "tier" in c ? c.tier : undefined,
  );
}

/** The project budget (cost micro-units per UTC day), one per tenant+project. Unlimited until configured. */
export function createBudgetDecider(opts: Omit<LedgerMachineOptions, "scope" | "tiers"> = {}): BudgetDecider {
  return build<BudgetCommand>("project", opts, BudgetCommand, neutralOfBudget, () => undefined);
}

export const ledgerDecider: UserLedgerDecider = createLedgerDecider();
export const budgetDecider: BudgetDecider = createBudgetDecider();

/**
 * Where a reservation stands: "open", one of its settlements, or undefined when this ledger does not
 * know it (never reserved, or settled more than a day ago). The runtime uses it after a reserve
 * that decided no events: "open" or "committed" means the reservation was made before.
 */
export function reservationStatus(state: LedgerState, reservationId: string): Settlement | "open" | undefined {
  return settlementOf(state.context, reservationId);
}
