import { assign, emit, setup } from "xstate";
import type { ErrorCode } from "../../core/errors.js";
import type { SessionEvent } from "../../core/events/session.js";
import type { Rejection } from "../decider.js";
import type { CloseSession, OpenSession, ResumeSession, UpgradeTier } from "./commands.js";
import { initialSessionContext, type SessionContext } from "./state.js";

/**
 * One session per client connection lifetime:
 *
 *   new ──opened──▶ open ──closed──▶ closed
 *                   ↺ resumed, tierUpgraded
 *
 * `closed` is the end: a client that comes back after that gets a new session. Tier upgrades go one
 * way only, anonymous → registered (someone who signed up mid-session); anything else — a
 * downgrade, or privileged, which only an admin grants on the ledger — is FORBIDDEN.
 */
type Cmd =
  | { type: "cmd.open"; cmd: OpenSession }
  | { type: "cmd.resume"; cmd: ResumeSession }
  | { type: "cmd.close"; cmd: CloseSession }
  | { type: "cmd.upgradeTier"; cmd: UpgradeTier };

export type SessionMachineEvent = Cmd | SessionEvent;

const no = (code: ErrorCode, message: string): { type: "reject"; params: Rejection } => ({ type: "reject", params: { code, message } });

export function createSessionMachine() {
  return setup({
    types: { context: {} as SessionContext, events: {} as SessionMachineEvent, emitted: {} as SessionEvent },
    actions: { reject: (_, _params: Rejection) => {} },
  }).createMachine({
    id: "session",
    context: initialSessionContext(),
    initial: "new",
    on: {
      "cmd.open": { actions: no("CONFLICT", "session already exists") },
      "cmd.resume": { actions: no("CONFLICT", "the session is closed") },
      "cmd.close": {},
      "cmd.upgradeTier": { actions: no("CONFLICT", "the session is closed") },

      "session.opened": {
        target: ".open",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          sessionId: event.data.sessionId,
          userId: event.data.userId,
          tenantId: event.data.tenantId,
          tier: event.data.tier,
          transport: event.data.transport,
        })),
      },
      "session.resumed": {
        actions: assign(({ context, event }) => ({ version: context.version + 1, transport: event.data.transport, resumes: context.resumes + 1 })),
      },
      "session.tierUpgraded": {
        actions: assign(({ context, event }) => ({ version: context.version + 1, tier: event.data.to })),
      },
      "session.closed": {
        target: ".closed",
        actions: assign(({ context, event }) => ({ version: context.version + 1, closeReason: event.data.reason })),
      },
    },
    states: {
      new: {
        on: {
          "cmd.open": {
            actions: emit(({ event }) => ({
              type: "session.opened" as const,
              data: {
                sessionId: event.cmd.sessionId,
                userId: event.cmd.userId,
                tenantId: event.cmd.tenantId,
                tier: event.cmd.tier,
                transport: event.cmd.transport,
              },
            })),
          },
          "cmd.resume": { actions: no("NOT_FOUND", "session not found") },
          "cmd.close": { actions: no("NOT_FOUND", "session not found") },
          "cmd.upgradeTier": { actions: no("NOT_FOUND", "session not found") },
        },
      },
      open: {
        on: {
          "cmd.open": [
            // A retried open (same command redelivered with a new command id) is the same session.
            {
              guard: ({ context, event }) =>
                context.sessionId === event.cmd.sessionId && context.userId === event.cmd.userId && context.tenantId === event.cmd.tenantId,
            },
            { actions: no("CONFLICT", "session already exists") },
          ],
          "cmd.resume": {
            actions: emit(({ context, event }) => ({
              type: "session.resumed" as const,
              data: { sessionId: context.sessionId, transport: event.cmd.transport },
            })),
          },
          "cmd.close": {
            actions: emit(({ context, event }) => ({
              type: "session.closed" as const,
              data: { sessionId: context.sessionId, reason: event.cmd.reason },
            })),
          },
          "cmd.upgradeTier": [
            { guard: ({ context, event }) => context.tier === event.cmd.tier },
            {
              guard: ({ context, event }) => context.tier === "anonymous" && event.cmd.tier === "registered",
              actions: emit(({ context, event }) => ({
                type: "session.tierUpgraded" as const,
                data: { sessionId: context.sessionId, userId: context.userId, from: context.tier, to: event.cmd.tier },
              })),
            },
            { actions: no("FORBIDDEN", "a session's tier only goes from anonymous to registered") },
          ],
        },
      },
      closed: {},
    },
  });
}

export type SessionMachine = ReturnType<typeof createSessionMachine>;
