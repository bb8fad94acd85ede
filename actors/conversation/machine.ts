import { assign, emit, setup } from "xstate";
import type { ErrorCode } from "../../core/errors.js";
import type { Rejection } from "../decider.js";
import { textDigest } from "../digest.js";
import { DEFAULT_MODEL } from "../economics/prices.js";
import { estimatePromptTokens } from "../economics/tokens.js";
import type {
  AppendDelta,
  ArchiveConversation,
  CancelReply,
  CompleteReply,
  CreateConversation,
  FailReply,
  PostMessage,
  RejectMessage,
} from "./commands.js";
import type { ConversationDomainEvent } from "./events.js";
import {
  clientIdMaybeOlder,
  idMaybeOlder,
  recentByClientId,
  recentByReplyId,
  recentIdTaken,
  rememberMessage,
  rememberReply,
  withReplyStatus,
} from "./repeat-index.js";
import { initialConversationContext, RECENT_MESSAGES, type ConversationContext, type MessageRecord } from "./state.js";

/**
 * The conversation as an XState v5 machine. States:
 *
 *   new ──created──▶ idle ──assistant.started──▶ replying ──completed|cancelled|failed──▶ idle
 *                     └──────────────archived──────────────▶ archived
 *
 * Commands (`cmd.*`) only emit domain events or a rejection (see machine-decider.ts); domain events
 * move the machine. Command handlers are listed per state, most specific guard first; the root
 * holds the fallback answer for a command a state does not take.
 */
export interface ConversationMachineOptions {
  defaultModel?: string;
  defaultTitle?: string;
  /** Messages kept in full in the state [RECENT_MESSAGES]; older ones are fingerprints (repeat-index.ts). */
  recentMessages?: number;
}

type Cmd =
  | { type: "cmd.create"; cmd: CreateConversation }
  | { type: "cmd.postMessage"; cmd: PostMessage }
  | { type: "cmd.reject"; cmd: RejectMessage }
  | { type: "cmd.appendDelta"; cmd: AppendDelta }
  | { type: "cmd.completeReply"; cmd: CompleteReply }
  | { type: "cmd.cancelReply"; cmd: CancelReply }
  | { type: "cmd.failReply"; cmd: FailReply }
  | { type: "cmd.archive"; cmd: ArchiveConversation };

export type ConversationMachineEvent = Cmd | ConversationDomainEvent;

const no = (code: ErrorCode, message: string): { type: "reject"; params: Rejection } => ({
  type: "reject",
  params: { code, message },
});

/**
 * A reply command about a reply that already ended: a harmless repeat (a retry after a crash).
 * Such retries come from the runtime for the reply it just ran, so the recent messages suffice.
 */
function isFinishedReply(ctx: ConversationContext, replyId: string | undefined): boolean {
  if (replyId === undefined) return false;
  const rec = recentByReplyId(ctx, replyId);
  return rec !== undefined && rec.replyStatus !== "streaming";
}

/**
 * A messageId or replyId used before. Beyond the recent messages only a fingerprint can tell, so a
 * hit counts as taken unless the runtime has read the log and found the ids unused (`history`).
 */
function idsTaken(ctx: ConversationContext, cmd: PostMessage): boolean {
  const { messageId, replyId } = cmd;
  if (messageId === replyId || recentIdTaken(ctx, messageId) || recentIdTaken(ctx, replyId)) return true;
  return cmd.history !== "checked" && (idMaybeOlder(ctx, messageId) || idMaybeOlder(ctx, replyId));
}

/** The clientMessageId was accepted before (in full in `recent`, or perhaps earlier: a fingerprint). */
function alreadyAccepted(ctx: ConversationContext, cmd: { clientMessageId: string; history?: "checked" | undefined }): boolean {
  if (recentByClientId(ctx, cmd.clientMessageId) !== undefined) return true;
  return cmd.history !== "checked" && clientIdMaybeOlder(ctx, cmd.clientMessageId);
}

function isRunning(ctx: ConversationContext, replyId: string | undefined): boolean {
  return ctx.reply !== null && (replyId === undefined || ctx.reply.replyId === replyId);
}

function setReplyStatus(ctx: ConversationContext, status: MessageRecord["replyStatus"]): ConversationContext["recent"] {
  return ctx.reply === null ? ctx.recent : withReplyStatus(ctx, ctx.reply.clientMessageId, status);
}

export function createConversationMachine(opts: ConversationMachineOptions = {}) {
  const defaultModel = opts.defaultModel ?? DEFAULT_MODEL;
  const defaultTitle = opts.defaultTitle ?? "Untitled";
  const window = Math.max(1, opts.recentMessages ?? RECENT_MESSAGES);

  return setup({
    types: {
      context: {} as ConversationContext,
      events: {} as ConversationMachineEvent,
      emitted: {} as ConversationDomainEvent,
    },
    actions: {
      // Never executed: decide() reads its params from the planned actions.
      reject: (_, _params: Rejection) => {},
    },
  }).createMachine({
    id: "conversation",
    context: initialConversationContext(),
    initial: "new",
    on: {
      // ---- fallbacks for commands a state does not take
      "cmd.create": { actions: no("CONFLICT", "conversation already exists") },
      "cmd.postMessage": { actions: no("CONFLICT", "the conversation does not accept messages") },
      "cmd.reject": { actions: no("CONFLICT", "the conversation does not accept messages") },
      "cmd.appendDelta": { actions: no("CONFLICT", "no reply is running") },
      "cmd.completeReply": { actions: no("CONFLICT", "no reply is running") },
      "cmd.cancelReply": {},
      "cmd.failReply": { actions: no("CONFLICT", "no reply is running") },
      "cmd.archive": { actions: no("CONFLICT", "a reply is running; cancel it first") },

      // ---- domain events (evolve); the log is the truth, so they apply in any state
      "conversation.created": {
        target: ".idle",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          title: event.data.title,
          model: event.data.model,
          ownerId: event.data.ownerId,
          tenantId: event.data.tenantId,
          projectId: event.data.projectId,
        })),
      },
      "message.received": {
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          ...rememberMessage(
            context,
            { clientMessageId: event.data.clientMessageId, messageId: event.data.messageId, digest: textDigest(event.data.text), version: context.version + 1 },
            window,
          ),
          pendingPrompt: event.data.text,
          totals: { ...context.totals, messages: context.totals.messages + 1 },
        })),
      },
      "message.rejected": {
        actions: assign(({ context }) => ({
          version: context.version + 1,
          totals: { ...context.totals, rejected: context.totals.rejected + 1 },
        })),
      },
      "assistant.started": {
        target: ".replying",
        actions: assign(({ context, event }) => {
          const d = event.data;
          return {
            version: context.version + 1,
            ...rememberReply(context, d.clientMessageId, d.messageId),
            reply: {
              replyId: d.messageId,
              replyTo: d.replyTo,
              clientMessageId: d.clientMessageId,
              userId: d.userId,
              model: d.model,
              maxTokens: d.maxTokens,
              inputTokens: d.inputTokens,
              prompt: context.pendingPrompt ?? "",
              nextIndex: 0,
              text: "",
              startedVersion: context.version + 1,
            },
            pendingPrompt: null,
          };
        }),
      },
      "assistant.delta": {
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          reply:
            context.reply === null
              ? null
              : { ...context.reply, nextIndex: event.data.index + 1, text: context.reply.text + event.data.text },
        })),
      },
      "assistant.completed": {
        target: ".idle",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          recent: setReplyStatus(context, "completed"),
          reply: null,
          totals: addUsage(context.totals, event.data.usage, event.data.costMicros),
        })),
      },
      "assistant.cancelled": {
        target: ".idle",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          recent: setReplyStatus(context, "cancelled"),
          reply: null,
          totals: addUsage(context.totals, event.data.usage, event.data.costMicros),
        })),
      },
      "assistant.failed": {
        target: ".idle",
        actions: assign(({ context, event }) => ({
          version: context.version + 1,
          recent: setReplyStatus(context, "failed"),
          reply: null,
          totals: addUsage(context.totals, event.data.usage, event.data.costMicros),
        })),
      },
      "conversation.archived": {
        target: ".archived",
        actions: assign(({ context }) => ({ version: context.version + 1 })),
      },
    },
    states: {
      new: {
        on: {
          "cmd.create": {
            actions: emit(({ event }) => ({
              type: "conversation.created" as const,
              data: {
                title: event.cmd.title ?? defaultTitle,
                model: event.cmd.model ?? defaultModel,
                ownerId: event.cmd.ownerId,
                tenantId: event.cmd.tenantId,
                projectId: event.cmd.projectId ?? null,
              },
            })),
          },
          "cmd.postMessage": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.reject": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.appendDelta": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.completeReply": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.cancelReply": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.failReply": { actions: no("NOT_FOUND", "conversation not found") },
          "cmd.archive": { actions: no("NOT_FOUND", "conversation not found") },
        },
      },
      idle: {
        on: {
          "cmd.create": sameCreate(),
          "cmd.postMessage": [
            ...repeatedMessage(),
            {
              // Ids come from the sender; a reused one would make two messages (or replies) one.
              guard: ({ context, event }) => idsTaken(context, event.cmd),
              actions: no("CONFLICT", "messageId or replyId already used in this conversation"),
            },
            {
              actions: [
                emit(({ event }) => ({
                  type: "message.received" as const,
                  data: {
                    messageId: event.cmd.messageId,
                    clientMessageId: event.cmd.clientMessageId,
                    userId: event.cmd.userId,
                    text: event.cmd.text,
                  },
                })),
                emit(({ context, event }) => ({
                  type: "assistant.started" as const,
                  data: {
                    messageId: event.cmd.replyId,
                    replyTo: event.cmd.messageId,
                    model: context.model,
                    clientMessageId: event.cmd.clientMessageId,
                    userId: event.cmd.userId,
                    maxTokens: event.cmd.maxTokens,
                    inputTokens: estimatePromptTokens(event.cmd.text),
                  },
                })),
              ],
            },
          ],
          "cmd.reject": [
            {
              guard: ({ context, event }) => alreadyAccepted(context, event.cmd),
              actions: no("CONFLICT", "the message was already accepted"),
            },
            {
              actions: emit(({ event }) => ({
                type: "message.rejected" as const,
                data: { clientMessageId: event.cmd.clientMessageId, code: event.cmd.code, message: event.cmd.message },
              })),
            },
          ],
          "cmd.appendDelta": finishedReplyRepeat(),
          "cmd.completeReply": finishedReplyRepeat(),
          "cmd.failReply": finishedReplyRepeat(),
          "cmd.archive": {
            actions: emit(({ event }) => ({ type: "conversation.archived" as const, data: { userId: event.cmd.userId ?? null } })),
          },
        },
      },
      replying: {
        on: {
          "cmd.create": sameCreate(),
          "cmd.postMessage": [...repeatedMessage(), { actions: no("CONFLICT", "a reply is running") }],
          "cmd.reject": [
            {
              guard: ({ context, event }) => alreadyAccepted(context, event.cmd),
              actions: no("CONFLICT", "the message was already accepted"),
            },
            {
              actions: emit(({ event }) => ({
                type: "message.rejected" as const,
                data: { clientMessageId: event.cmd.clientMessageId, code: event.cmd.code, message: event.cmd.message },
              })),
            },
          ],
          "cmd.appendDelta": [
            // Not the running reply: a repeat for a finished one is harmless, anything else a conflict.
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId) && isFinishedReply(context, event.cmd.replyId) },
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId), actions: no("CONFLICT", "not the running reply") },
            // An index already appended is a redelivery: the same delta again, nothing to do.
            { guard: ({ context, event }) => event.cmd.index < (context.reply?.nextIndex ?? 0) },
            {
              guard: ({ context, event }) => event.cmd.index > (context.reply?.nextIndex ?? 0),
              actions: {
                type: "reject",
                params: ({ context, event }) => ({
                  code: "CONFLICT" as const,
                  message: `delta index ${event.cmd.index} leaves a gap: the next index is ${context.reply?.nextIndex ?? 0}`,
                  details: { expected: context.reply?.nextIndex ?? 0, got: event.cmd.index },
                }),
              },
            },
            {
              actions: emit(({ event }) => ({
                type: "assistant.delta" as const,
                data: { messageId: event.cmd.replyId, index: event.cmd.index, text: event.cmd.text },
              })),
            },
          ],
          "cmd.completeReply": [
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId) && isFinishedReply(context, event.cmd.replyId) },
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId), actions: no("CONFLICT", "not the running reply") },
            {
              actions: emit(({ context, event }) => ({
                type: "assistant.completed" as const,
                data: {
                  messageId: event.cmd.replyId,
                  text: context.reply?.text ?? "",
                  finishReason: event.cmd.finishReason,
                  usage: event.cmd.usage,
                  costMicros: event.cmd.costMicros,
                },
              })),
            },
          ],
          "cmd.cancelReply": [
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId) },
            {
              actions: emit(({ context, event }) => ({
                type: "assistant.cancelled" as const,
                data: { messageId: context.reply?.replyId ?? "", usage: event.cmd.usage, costMicros: event.cmd.costMicros },
              })),
            },
          ],
          "cmd.failReply": [
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId) && isFinishedReply(context, event.cmd.replyId) },
            { guard: ({ context, event }) => !isRunning(context, event.cmd.replyId), actions: no("CONFLICT", "not the running reply") },
            {
              actions: emit(({ context, event }) => ({
                type: "assistant.failed" as const,
                data: {
                  messageId: context.reply?.replyId ?? "",
                  usage: event.cmd.usage,
                  costMicros: event.cmd.costMicros,
                  code: event.cmd.code,
                  message: event.cmd.message,
                },
              })),
            },
          ],
        },
      },
      archived: {
        on: {
          "cmd.create": sameCreate(),
          "cmd.postMessage": [...repeatedMessage(), { actions: no("CONFLICT", "the conversation is archived") }],
          "cmd.reject": { actions: no("CONFLICT", "the conversation is archived") },
          "cmd.appendDelta": finishedReplyRepeat(),
          "cmd.completeReply": finishedReplyRepeat(),
          "cmd.failReply": finishedReplyRepeat(),
          // Archiving twice is the same as once.
          "cmd.archive": {},
        },
      },
    },
  });

  // ---- transition builders shared by several states (closures over the typed setup)

  function sameCreate() {
    return [
      // A retried create (same Idempotency-Key → same id) answers the existing conversation.
      {
        guard: ({ context, event }: { context: ConversationContext; event: { type: "cmd.create"; cmd: CreateConversation } }) =>
          context.ownerId === event.cmd.ownerId && context.tenantId === event.cmd.tenantId,
      },
      { actions: no("CONFLICT", "conversation already exists") },
    ];
  }

  function repeatedMessage() {
    type E = { type: "cmd.postMessage"; cmd: PostMessage };
    return [
      {
        // Same clientMessageId, same text: the first answer again, no new events (CONTRACT §3).
        guard: ({ context, event }: { context: ConversationContext; event: E }) =>
          recentByClientId(context, event.cmd.clientMessageId)?.digest === textDigest(event.cmd.text),
      },
      {
        guard: ({ context, event }: { context: ConversationContext; event: E }) => recentByClientId(context, event.cmd.clientMessageId) !== undefined,
        actions: no("CONFLICT", "clientMessageId was already used with a different text"),
      },
      {
        // Perhaps accepted before the recent messages: only the log can say with which text. The
        // runtime reads it first and answers a repeat itself, so it never gets here.
        guard: ({ context, event }: { context: ConversationContext; event: E }) =>
          event.cmd.history !== "checked" && clientIdMaybeOlder(context, event.cmd.clientMessageId),
        actions: {
          type: "reject" as const,
          params: { code: "CONFLICT" as const, message: "clientMessageId may have been used before the recent messages: look it up in the log", details: { lookup: "log" } },
        },
      },
    ];
  }

  function finishedReplyRepeat() {
    type E = { type: "cmd.appendDelta" | "cmd.completeReply" | "cmd.failReply"; cmd: { replyId?: string | undefined } };
    return [
      { guard: ({ context, event }: { context: ConversationContext; event: E }) => isFinishedReply(context, event.cmd.replyId) },
      { actions: no("CONFLICT", "no reply is running") },
    ];
  }
}

function addUsage(
  totals: ConversationContext["totals"],
  usage: { inputTokens: number; outputTokens: number },
  costMicros: number,
): ConversationContext["totals"] {
  return {
    ...totals,
    replies: totals.replies + 1,
    inputTokens: totals.inputTokens + usage.inputTokens,
    outputTokens: totals.outputTokens + usage.outputTokens,
    costMicros: totals.costMicros + costMicros,
  };
}

export type ConversationMachine = ReturnType<typeof createConversationMachine>;
