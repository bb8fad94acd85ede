import { getInitialSnapshot, type SnapshotFrom } from "xstate";
import { z } from "zod";
import { TributaryError } from "../../core/errors.js";
import type { Decider } from "../decider.js";
import { textDigest } from "../digest.js";
import { decideWith, restoreWith } from "../machine-decider.js";
import { deriveEvolve } from "../machine-evolve.js";
import { ConversationCommand } from "./commands.js";
import { ConversationDomainEvents, type ConversationDomainEvent } from "./events.js";
import { createConversationMachine, type ConversationMachine, type ConversationMachineOptions } from "./machine.js";
import { needsHistory, recentByClientId } from "./repeat-index.js";
import {
  CONVERSATION_STATES,
  ConversationContext,
  type ConversationStatus,
  type MessageRecord,
  type RunningReply,
} from "./state.js";

export type ConversationState = SnapshotFrom<ConversationMachine>;
export type ConversationDecider = Decider<ConversationCommand, ConversationDomainEvent, ConversationState> & {
  machine: ConversationMachine;
};

const Snapshot = z.object({ value: z.enum(CONVERSATION_STATES), context: ConversationContext }).loose();

function isConversationEventType(t: string): t is keyof typeof ConversationDomainEvents {
  return Object.hasOwn(ConversationDomainEvents, t);
}

/** `{type: "postMessage", …}` → the machine's `{type: "cmd.postMessage", cmd}`. */
function commandEvent(command: ConversationCommand): { type: string; cmd: ConversationCommand } {
  return { type: `cmd.${command.type}`, cmd: command };
}

export function createConversationDecider(opts: ConversationMachineOptions = {}): ConversationDecider {
  const machine = createConversationMachine(opts);
  // Folds without the interpreter; the machine still decides every command (machine-evolve.ts).
  const evolve = deriveEvolve<ConversationState>(machine);
  return {
    machine,
    initialState: () => getInitialSnapshot(machine),
    decide: (command, state) => decideWith<ConversationDomainEvent>(machine, state, commandEvent(command)),
    evolve,
    parseCommand(input) {
      const r = ConversationCommand.safeParse(input);
      if (!r.success) throw new TributaryError("VALIDATION_FAILED", "invalid conversation command", { details: r.error.issues, permanent: true });
      return r.data;
    },
    parseEvent(raw) {
      if (!isConversationEventType(raw.type)) {
        throw new TributaryError("BAD_REQUEST", `not a conversation event: ${raw.type}`, { permanent: true });
      }
      const r = ConversationDomainEvents[raw.type].safeParse(raw.data);
      if (!r.success) throw new TributaryError("BAD_REQUEST", `malformed ${raw.type} event`, { details: r.error.issues, permanent: true });
      return { type: raw.type, data: r.data } as ConversationDomainEvent;
    },
    toSnapshot: (state) => machine.getPersistedSnapshot(state),
    fromSnapshot: (json) => restoreWith(machine, Snapshot, json, "conversation"),
    versionOf: (state) => state.context.version,
  };
}

/** The decider with default options (model "sim-1", title "Untitled"). */
export const conversationDecider: ConversationDecider = createConversationDecider();

// ---- read helpers for the runtime (pure; no need to know the machine's shape)

export function conversationStatus(state: ConversationState): ConversationStatus {
  return state.value as ConversationStatus;
}

/**
 * What an accepted message left behind (ids, text digest, version of message.received, reply
 * status) — for the messages kept in full (state.ts RECENT_MESSAGES); older ones are in the log.
 */
export function messageRecord(state: ConversationState, clientMessageId: string): MessageRecord | undefined {
  return recentByClientId(state.context, clientMessageId);
}

export function runningReply(state: ConversationState): RunningReply | null {
  return state.context.reply;
}

/**
 * How a postMessage would be answered from state alone, before touching any ledger: the runtime
 * asks this first, so a repeat never reserves quota twice. `duplicate` carries the first answer
 * (the runtime reads the offset of version `receivedVersion` for the 201/200 body). `history`: the
 * clientMessageId (or, when given, the messageId / replyId) may have been used before the messages
 * the state keeps in full — the runtime reads the log to answer, and marks the command
 * `history: "checked"` if it is new after all.
 */
export type MessageLookup =
  | { kind: "new" }
  | { kind: "duplicate"; messageId: string; replyId: string; receivedVersion: number; record: MessageRecord }
  | { kind: "conflict" }
  | { kind: "history" };

export function lookupClientMessage(
  state: ConversationState,
  clientMessageId: string,
  text: string,
  ids: { messageId?: string; replyId?: string } = {},
): MessageLookup {
  const rec = recentByClientId(state.context, clientMessageId);
  if (rec === undefined) return needsHistory(state.context, { clientMessageId, ...ids }) ? { kind: "history" } : { kind: "new" };
  if (rec.digest !== textDigest(text)) return { kind: "conflict" };
  return { kind: "duplicate", messageId: rec.messageId, replyId: rec.replyId, receivedVersion: rec.version, record: rec };
}
