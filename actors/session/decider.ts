import { getInitialSnapshot, type SnapshotFrom } from "xstate";
import { z } from "zod";
import { TributaryError } from "../../core/errors.js";
import { SessionEvents, isSessionEventType, type SessionEvent } from "../../core/events/session.js";
import type { Decider } from "../decider.js";
import { decideWith, restoreWith } from "../machine-decider.js";
import { deriveEvolve } from "../machine-evolve.js";
import { SessionCommand } from "./commands.js";
import { createSessionMachine, type SessionMachine } from "./machine.js";
import { SESSION_STATES, SessionContext, type SessionStatus } from "./state.js";

export type SessionState = SnapshotFrom<SessionMachine>;
export type SessionDecider = Decider<SessionCommand, SessionEvent, SessionState> & { machine: SessionMachine };

const Snapshot = z.object({ value: z.enum(SESSION_STATES), context: SessionContext }).loose();

function commandEvent(command: SessionCommand): { type: string; cmd: SessionCommand } {
  return { type: `cmd.${command.type}`, cmd: command };
}

export function createSessionDecider(): SessionDecider {
  const machine = createSessionMachine();
  // Folds without the interpreter; the machine still decides every command (machine-evolve.ts).
  const evolve = deriveEvolve<SessionState>(machine);
  return {
    machine,
    initialState: () => getInitialSnapshot(machine),
    decide: (command, state) => decideWith<SessionEvent>(machine, state, commandEvent(command)),
    evolve,
    parseCommand(input) {
      const r = SessionCommand.safeParse(input);
      if (!r.success) throw new TributaryError("VALIDATION_FAILED", "invalid session command", { details: r.error.issues, permanent: true });
      return r.data;
    },
    parseEvent(raw) {
      if (!isSessionEventType(raw.type)) throw new TributaryError("BAD_REQUEST", `not a session event: ${raw.type}`, { permanent: true });
      const r = SessionEvents[raw.type].safeParse(raw.data);
      if (!r.success) throw new TributaryError("BAD_REQUEST", `malformed ${raw.type} event`, { details: r.error.issues, permanent: true });
      return { type: raw.type, data: r.data } as SessionEvent;
    },
    toSnapshot: (state) => machine.getPersistedSnapshot(state),
    fromSnapshot: (json) => restoreWith(machine, Snapshot, json, "session"),
    versionOf: (state) => state.context.version,
  };
}

export const sessionDecider: SessionDecider = createSessionDecider();

export function sessionStatus(state: SessionState): SessionStatus {
  return state.value as SessionStatus;
}
