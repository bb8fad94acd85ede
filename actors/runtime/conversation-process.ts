import { decodeEvent } from "../../core/codec.js";
import type { StoredEvent } from "../../core/envelope.js";
import { TributaryError, errorMessage } from "../../core/errors.js";
import { keys } from "../../core/keys.js";
import type { Logger } from "../../core/logger.js";
import { partitionOf } from "../../core/partition.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { conversationStatus, lookupClientMessage, runningReply, type ConversationDecider, type ConversationState } from "../conversation/index.js";
import type { ConversationCommand, ConversationDomainEvent } from "../conversation/index.js";
import { costMicros, DEFAULT_MODEL, estimateTokens, reservationFor, type PriceTable } from "../economics/index.js";
import type { CommandRecord, CommandResult } from "./command.js";
import type { Decision } from "../decider.js";
import type { LedgerPort } from "./ledger-port.js";
import type { AggregateRepository } from "./repository.js";
import type { ReplyResponder } from "./responder.js";
import { findInLog } from "./message-history.js";
import { startOf } from "../responders/adapters.js";
import type { StartReply } from "../responders/types.js";
import { ReplyRunner } from "./reply-runner.js";
import { clearRunning, listRunning, markRunning } from "./running-set.js";
import { textDigest } from "../digest.js";
import { recentByReplyId } from "../conversation/repeat-index.js";

type Conversations = AggregateRepository<ConversationCommand, ConversationDomainEvent, ConversationState>;
type PostMessageCommand = Extract<ConversationCommand, { type: "postMessage" }>;

/**
 * Commands decided one after the other, each on the state the previous ones' events lead to, as
 * one decision (one append). A refused command adds nothing and the next is decided as if it had
 * not been sent — what executing them one by one did, where a refused piece appended nothing.
 */
export function decideInOrder(decider: ConversationDecider, commands: ConversationCommand[], state: ConversationState): Decision<ConversationDomainEvent> {
  const events: ConversationDomainEvent[] = [];
  let next = state;
  for (const c of commands) {
    const d = decider.decide(c, next);
    if (!d.ok) continue;
    for (const e of d.events) {
      events.push(e);
      next = decider.evolve(next, e);
    }
  }
  return { ok: true, events, next };
}

export interface ConversationProcessOptions {
  redis: RedisClient;
  partitions: number;
  conversations: Conversations;
  decider: ConversationDecider;
  ledgers: LedgerPort;
  responder: ReplyResponder;
  prices: PriceTable;
  /** maxTokens when the message gives none (SIM_MAX_TOKENS). Not a cap: the message's own maxTokens is honoured. */
  defaultMaxTokens: number;
  log: Logger;
  /** The clock for commands the runtime issues itself (deltas, completion); decisions never read it. */
  now?: () => Date;
}

/**
 * How long a reply delta's append is remembered by command id (instead of IDEM_TTL, a day by
 * default). A delta append is retried only by the worker that streams the reply, while it still
 * owns the conversation: its client's retries across a reconnect (seconds) and the repository's
 * CONFLICT loop (milliseconds); a new owner ends the reply and appends no deltas of the old one.
 * Even past this the decider answers a delta index it holds with no events, so nothing appends
 * twice. Deltas are nearly every append of a streamed reply (one per piece while the model
 * produces), and each record costs ~276 bytes of Redis for its TTL (docs/operations.md).
 */
export const DELTA_DEDUPE_TTL_MS = 5 * 60_000;
const DELTA_APPEND = { dedupeTtlMs: DELTA_DEDUPE_TTL_MS } as const;

export const ok = (value: Record<string, unknown>): CommandResult => ({ ok: true, value });
export const fail = (e: TributaryError): CommandResult => ({
  ok: false,
  error: {
    code: e.code,
    message: e.message,
    ...(e.details === undefined ? {} : { details: e.details }),
    ...(e.retryAfter === undefined ? {} : { retryAfter: e.retryAfter }),
  },
});

/**
 * The conversation's process manager: everything around the pure decider that needs I/O — quota
 * reservations on the ledgers before a reply starts (I8), the responder that streams the reply as
 * `assistant.delta` events, cancel, and the settling of usage when a reply ends. One instance per
 * worker; it only ever writes conversations of partitions the worker owns (I3).
 */
export class ConversationProcess {
  private readonly runners = new Map<string, ReplyRunner>();
  private readonly now: () => Date;
  /** The responder's push form, or its pull form adapted (responders/types.ts). */
  private readonly start: StartReply;

  constructor(private readonly o: ConversationProcessOptions) {
    this.now = o.now ?? (() => new Date());
    this.start = o.responder.start ?? startOf((req) => o.responder.stream(req));
  }

  async handle(cmd: CommandRecord): Promise<CommandResult> {
    try {
      switch (cmd.type) {
        case "conversation.create":
          return await this.create(cmd);
        case "conversation.postMessage":
          return await this.postMessage(cmd);
        case "conversation.cancel":
          return await this.cancel(cmd);
        case "conversation.archive":
          return await this.archive(cmd);
        default:
          throw new TributaryError("BAD_REQUEST", `unknown command type ${cmd.type}`, { permanent: true });
      }
    } catch (e) {
      // A rejection or invalid command is an answer, not a failure to retry.
      if (e instanceof TributaryError && (e.permanent || e.status < 500)) return fail(e);
      throw e;
    }
  }

  // ---- create

  private async create(cmd: CommandRecord): Promise<CommandResult> {
    const p = cmd.payload as { title?: string; model?: string; projectId?: string | null };
    const command = this.o.decider.parseCommand({
      type: "create",
      at: cmd.at,
      title: p.title,
      model: p.model,
      ownerId: cmd.principal.userId,
      tenantId: cmd.principal.tenantId,
      projectId: p.projectId ?? cmd.principal.projectId ?? null,
    });
    const { decision, loaded, appended } = await this.o.conversations.execute(cmd.aggregateId, cmd.id, cmd.at, (s) =>
      this.o.decider.decide(command, s),
    );
    const ctx = loaded.state.context;
    if (!decision.ok) {
      // The same Idempotency-Key from the same owner answers the same conversation.
      if (ctx.version > 0 && ctx.ownerId === cmd.principal.userId && ctx.tenantId === cmd.principal.tenantId) {
        return ok({ id: cmd.aggregateId, title: ctx.title, model: ctx.model, createdAt: await this.createdAt(cmd.aggregateId) });
      }
      // Someone else's id: answer as if it did not exist (I9: never reveal a foreign id).
      throw new TributaryError("CONFLICT", "conversation id already in use");
    }
    return ok({ id: cmd.aggregateId, title: ctx.title, model: ctx.model, createdAt: appended ? cmd.at : await this.createdAt(cmd.aggregateId) });
  }

  private async createdAt(id: string): Promise<string> {
    const events = await this.o.conversations.store.read({ kind: "conversation", id }, { limit: 1 });
    return events[0]?.at ?? this.now().toISOString();
  }

  // ---- post a message

  private async postMessage(cmd: CommandRecord): Promise<CommandResult> {
    const p = cmd.payload as { messageId: string; replyId: string; clientMessageId: string; text: string; maxTokens?: number };
    const id = cmd.aggregateId;
    // The caller's cap is the reply's cap (and what is reserved); a responder may stop earlier (the
    // simulated one at SIM_MAX_TOKENS) and the unused part of the reservation is released.
    const maxTokens = p.maxTokens ?? this.o.defaultMaxTokens;
    const parsed = this.o.decider.parseCommand({
      type: "postMessage",
      at: cmd.at,
      messageId: p.messageId,
      replyId: p.replyId,
      clientMessageId: p.clientMessageId,
      text: p.text,
      userId: cmd.principal.userId,
      maxTokens,
    });
    if (parsed.type !== "postMessage") throw new Error("unreachable");

    return this.o.conversations.exclusive(id, async () => {
      const loaded = await this.o.conversations.load(id);
      const ctx = loaded.state.context;
      this.authorize(loaded.state, cmd, { write: true });

      const first = await this.repeatAnswer(id, loaded.state, p, parsed);
      if ("answer" in first) return first.answer;
      const post = first.post;
      // Dry run: would the conversation accept it (not archived, no reply running)? Only then reserve.
      const dry = this.o.decider.decide(post, loaded.state);
      if (!dry.ok) throw new TributaryError(dry.rejection.code, dry.rejection.message);

      const model = ctx.model || DEFAULT_MODEL;
      const amounts = reservationFor(this.o.prices, model, p.text, maxTokens);
      const reserved = await this.o.ledgers.reserve({
        tenantId: ctx.tenantId,
        userId: cmd.principal.userId,
        projectId: ctx.projectId,
        tier: cmd.principal.tier,
        reservationId: p.replyId,
        tokens: amounts.tokens,
        costMicros: amounts.costMicros,
        conversationId: id,
        at: cmd.at,
      });
      if (!reserved.ok) {
        await this.appendUnlocked(id, `${cmd.id}:reject`, cmd.at, {
          type: "reject",
          at: cmd.at,
          clientMessageId: p.clientMessageId,
          code: reserved.rejection.code,
          message: reserved.rejection.message,
          ...(post.history ? { history: post.history } : {}),
        });
        throw new TributaryError(reserved.rejection.code, reserved.rejection.message, reserved.rejection.retryAfter === undefined ? {} : { retryAfter: reserved.rejection.retryAfter });
      }

      const partition = partitionOf(id, this.o.partitions);
      await markRunning(this.o.redis, partition, id);
      // The state is unchanged since the dry run (we hold the aggregate's lock), so its decision is
      // reused: one XState transition fewer on the hottest command.
      const checked = loaded.state;
      const { decision, appended, loaded: decided } = await this.o.conversations.executeUnlocked(id, cmd.id, cmd.at, (s) =>
        s === checked ? dry : this.o.decider.decide(post, s),
      );
      if (!decision.ok || appended === undefined) {
        // The state the dry run saw was not the stream's: the append met a CONFLICT and the tail it
        // read holds what this worker's memory lacked — the first attempt of this very message
        // (appended elsewhere, or here with its WAIT timed out and so never folded), or a reply
        // that started since. No reply starts for this attempt: give its reservation back (else it
        // holds a concurrent-reply slot until it expires), and answer from the stream's state — a
        // repeat with the FIRST attempt's ids, never a 201 with ids no event holds. Unless a reply
        // with this attempt's replyId is in that state: then this is a redelivery of the first
        // attempt itself (its dedupe record gone), and the reservation is that reply's.
        if (recentByReplyId(decided.state.context, p.replyId) === undefined) {
          await this.o.ledgers.release({ tenantId: ctx.tenantId, userId: cmd.principal.userId, projectId: ctx.projectId, reservationId: p.replyId, at: cmd.at });
        }
        if (!decision.ok) throw new TributaryError(decision.rejection.code, decision.rejection.message);
        const again = await this.repeatAnswer(id, decided.state, p, parsed);
        if ("answer" in again) return again.answer;
        throw new Error(`postMessage ${p.clientMessageId}: the decider appended nothing for a message the state does not hold`);
      }
      const offset = appended.offsets[0];
      this.startRunner(id, partition);
      return ok({ status: 201, messageId: p.messageId, replyId: p.replyId, offset });
    });
  }

  /**
   * CONTRACT §3: a repeated clientMessageId answers its first answer (200, the first attempt's
   * ids); another text is a conflict. Otherwise the command to decide — marked `history: "checked"`
   * when the state keeps the ids only as fingerprints (older than its recent messages) and the log
   * was read to settle them.
   */
  private async repeatAnswer(
    id: string,
    state: ConversationState,
    p: { messageId: string; replyId: string; clientMessageId: string; text: string },
    parsed: PostMessageCommand,
  ): Promise<{ answer: CommandResult } | { post: PostMessageCommand }> {
    const seen = lookupClientMessage(state, p.clientMessageId, p.text, { messageId: p.messageId, replyId: p.replyId });
    if (seen.kind === "conflict") throw new TributaryError("CONFLICT", "clientMessageId was used with a different text");
    if (seen.kind === "duplicate") {
      const offset = await this.receivedOffset(id, seen.receivedVersion, seen.messageId);
      return { answer: ok({ status: 200, messageId: seen.messageId, replyId: seen.replyId, offset }) };
    }
    if (seen.kind !== "history") return { post: parsed };
    const found = await findInLog(this.o.conversations.history(id), p);
    if (found.message) {
      if (found.message.digest !== textDigest(p.text)) throw new TributaryError("CONFLICT", "clientMessageId was used with a different text");
      return { answer: ok({ status: 200, messageId: found.message.messageId, replyId: found.message.replyId, offset: found.message.offset }) };
    }
    if (found.idsUsed) throw new TributaryError("CONFLICT", "messageId or replyId already used in this conversation");
    return { post: { ...parsed, history: "checked" } };
  }

  /** Append under the aggregate lock the caller already holds; a rejection becomes the error. */
  private async appendUnlocked(id: string, commandId: string, at: string, command: ConversationCommand) {
    const { decision, appended, loaded } = await this.o.conversations.executeUnlocked(id, commandId, at, (s) => this.o.decider.decide(command, s));
    if (!decision.ok) throw new TributaryError(decision.rejection.code, decision.rejection.message);
    return { offsets: appended?.offsets ?? [], loaded };
  }

  /**
   * Offset of the `message.received` of `messageId` at `version` (a repeated message's answer). The
   * message is usually recent: scan back from the end of the Redis stream; if it has moved to the
   * archive, read the history. The answer comes from the cached state, so the stream is the check:
   * when it holds something else there (or nothing), it lost the message after the state saw it —
   * a failover to a replica that lacked an append whose WAIT had timed out (DivergedStateError) —
   * and the message was never acknowledged. The cached state is dropped and the command retried
   * (5xx): the retry decides on the stream and accepts the message anew.
   */
  private async receivedOffset(id: string, version: number, messageId: string): Promise<string> {
    const isIt = (e: { type: string; data: unknown }): boolean =>
      e.type === "message.received" && (e.data as { messageId?: unknown } | null)?.messageId === messageId;
    let found: { offset: string; event: { type: string; data: unknown } } | undefined;
    for await (const { offset, event } of this.newestFirst(id)) {
      if (event.version === version) found = { offset, event };
      if (event.version <= version) break;
    }
    if (!found) {
      const archived = await this.o.conversations.eventAtVersion(id, version);
      if (archived) found = { offset: archived.offset, event: archived };
    }
    if (found && isIt(found.event)) return found.offset;
    this.o.conversations.invalidate(id, `v${version} is not message.received of ${messageId}`);
    throw new TributaryError("UNAVAILABLE", `conversation ${id}: the stream no longer holds message ${messageId}; retrying against the stream`, { retryAfter: 1 });
  }

  /** The conversation's events still in Redis, newest first, in pages (recent history is cheap). */
  private async *newestFirst(id: string, pageSize = 200): AsyncGenerator<{ offset: string; event: StoredEvent }> {
    const key = keys.stream(partitionOf(id, this.o.partitions), "conversation", id);
    let end = "+";
    for (;;) {
      const page = (await this.o.redis.xrevrangeBuffer(key, end, "-", "COUNT", pageSize)) as Array<[Buffer, Buffer[]]>;
      for (const [entryId, fields] of page) {
        const raw = fields[1]; // fields are [e, <stored event>, h, <hash>]
        if (raw) yield { offset: entryId.toString(), event: decodeEvent(raw) };
      }
      const last = page[page.length - 1];
      if (page.length < pageSize || !last) return;
      end = `(${last[0].toString()}`;
    }
  }

  // ---- cancel and archive

  private async cancel(cmd: CommandRecord): Promise<CommandResult> {
    const id = cmd.aggregateId;
    const runner = this.runners.get(id);
    if (runner) {
      const loaded = await this.o.conversations.load(id);
      this.authorize(loaded.state, cmd, { write: true });
      runner.stop("cancel");
      await runner.whenDone();
      // The reply may have completed in the append that was in flight when the cancel came.
      if (runner.outcome === "completed") return ok({ cancelled: false });
      if (runner.outcome === "ended") return ok({ cancelled: true });
      // The runner retired without ending the reply. Handed over (or shutting down) meanwhile: the
      // next owner ends it, so this cancel did nothing yet — retried, it reaches that owner.
      if (runner.reason !== "cancel") {
        throw new TributaryError("UNAVAILABLE", `conversation ${id}: the reply was handed over before the cancel took effect`, { retryAfter: 1 });
      }
      // A step failed (say, loading the reply): it is still running, with no runner — end it below.
    }
    return this.o.conversations.exclusive(id, async () => {
      const loaded = await this.o.conversations.load(id, { fresh: true });
      this.authorize(loaded.state, cmd, { write: true });
      const reply = runningReply(loaded.state);
      if (!reply) return ok({ cancelled: false });
      // A reply with no runner here is an orphan (its worker died): end it as cancelled, billed so far.
      await this.endOrphan(id, loaded.state, "cancel", cmd.at);
      return ok({ cancelled: true });
    });
  }

  private async archive(cmd: CommandRecord): Promise<CommandResult> {
    const command = this.o.decider.parseCommand({ type: "archive", at: cmd.at, userId: cmd.principal.userId });
    const loaded = await this.o.conversations.load(cmd.aggregateId);
    this.authorize(loaded.state, cmd, { write: true });
    const { decision } = await this.o.conversations.execute(cmd.aggregateId, cmd.id, cmd.at, (s) => this.o.decider.decide(command, s));
    if (!decision.ok) throw new TributaryError(decision.rejection.code, decision.rejection.message);
    return ok({ archived: true });
  }

  /** I9: the edge checks too, but the actor never trusts a caller with another tenant's data. */
  private authorize(state: ConversationState, cmd: CommandRecord, opts: { write: boolean }): void {
    const ctx = state.context;
    const sameTenant = ctx.tenantId === cmd.principal.tenantId;
    const isOwner = sameTenant && ctx.ownerId === cmd.principal.userId;
    const privileged = sameTenant && (cmd.principal.roles.includes("admin") || (!opts.write && cmd.principal.roles.includes("auditor")));
    if (ctx.version === 0 || !(isOwner || privileged)) throw new TributaryError("NOT_FOUND", "conversation not found");
  }

  // ---- the reply

  private startRunner(id: string, partition: number): void {
    const runner = new ReplyRunner(id, partition);
    this.runners.set(id, runner);
    void this.guarded(runner, this.beginReply(runner));
  }

  /**
   * A reply's life is three steps, none of which waits while the responder is silent (ReplyRunner):
   * `beginReply` loads it and starts the responder; `drainReply` runs whenever pieces arrive and
   * appends them; `endReply` appends the end and settles the usage. A failure in any of them is
   * logged and retires the runner (recovery ends what it left running).
   */
  private async guarded(runner: ReplyRunner, step: Promise<void>): Promise<void> {
    try {
      await step;
    } catch (e) {
      this.o.log.error({ err: errorMessage(e), conversationId: runner.conversationId }, "reply runner failed");
      runner.stop(); // a responder still running would push into a retired runner
      this.retire(runner);
    }
  }

  private retire(runner: ReplyRunner): void {
    if (this.runners.get(runner.conversationId) === runner) this.runners.delete(runner.conversationId);
    runner.markDone();
  }

  private async beginReply(runner: ReplyRunner): Promise<void> {
    const first = await this.o.conversations.load(runner.conversationId);
    const reply = runningReply(first.state);
    if (!reply) return this.retire(runner);
    runner.reply = reply;
    runner.loadedState = first.state;
    runner.index = reply.nextIndex;
    runner.text = reply.text;
    runner.usage = this.usageSoFar(reply.prompt, reply.inputTokens, runner.index, runner.text);
    // Stopped before it started (a cancel while the reply was loading): it never starts.
    if (!runner.stopped) runner.responder = this.start({ model: reply.model, prompt: reply.prompt, maxTokens: reply.maxTokens, skip: runner.index }, runner);
    runner.arm(() => void this.guarded(runner, this.drainReply(runner)));
  }

  /**
   * Appends what the responder pushed, as long as it pushes: pieces that arrive while an append is
   * in flight go out together in the next one, and when the responder finishes within that batch the
   * reply's end goes with them — a one-piece reply is one append, not two. Each piece is still
   * decided as its own appendDelta command with the next index (a retried batch appends nothing
   * twice: the decider answers a lower index with no events).
   */
  private async drainReply(runner: ReplyRunner): Promise<void> {
    const reply = runner.reply!;
    const id = runner.conversationId;
    try {
      for (;;) {
        if (runner.stopped) break;
        const { items, ended, error } = runner.takeNow();
        if (items.length === 0 && !ended) return runner.idle(); // woken again by the next push
        const at = this.now().toISOString();
        const commands: ConversationCommand[] = [];
        for (const chunk of items) {
          if (chunk.kind === "delta") {
            commands.push({ type: "appendDelta", at, replyId: reply.replyId, index: runner.index, text: chunk.text });
            runner.index++;
            runner.text += chunk.text;
            runner.usage = this.usageSoFar(reply.prompt, reply.inputTokens, runner.index, runner.text);
          } else {
            runner.finishReason = chunk.finishReason;
            runner.usage = chunk.usage;
          }
        }
        if (ended && !error) {
          const cost = costMicros(this.o.prices, reply.model, runner.usage);
          commands.push({ type: "completeReply", at, replyId: reply.replyId, finishReason: runner.finishReason, usage: runner.usage, costMicros: cost });
        }
        const last = commands[commands.length - 1];
        if (last) {
          const deltasOnly = last.type === "appendDelta";
          const commandId = deltasOnly ? `delta:${reply.replyId}:${last.index}` : `end:${reply.replyId}`;
          // Deltas are most of a chat's appends; their dedupe records need not outlive the retries of
          // this owner (see DELTA_DEDUPE_TTL_MS). A batch that ends the reply keeps IDEM_TTL.
          const opts = deltasOnly ? DELTA_APPEND : {};
          await this.o.conversations.execute(id, commandId, at, (s) => decideInOrder(this.o.decider, commands, s), {}, opts);
          if (last.type === "completeReply") runner.outcome = "completed";
        }
        runner.finished = ended;
        if (error) throw error.cause;
        if (ended) break;
      }
    } catch (e) {
      if (!runner.stopped) runner.failure = { code: "RESPONDER_FAILED", message: errorMessage(e) };
    }
    // An append failed while the responder still runs: stop it (without a reason, so the failure
    // stays a failure, not a cancel).
    if (!runner.finished) runner.stop();
    await this.endReply(runner);
  }

  private async endReply(runner: ReplyRunner): Promise<void> {
    const reply = runner.reply!;
    const id = runner.conversationId;
    // Handed over (or shutting down): the next owner ends the reply, or — when the end went out —
    // settles it and clears its running mark; clearing it here could remove the new owner's mark.
    if (runner.reason === "handover" || runner.reason === "shutdown") return this.retire(runner);
    const at = this.now().toISOString();
    const usage = runner.usage;
    const cost = costMicros(this.o.prices, reply.model, usage);
    if (runner.outcome !== "completed") {
      let end: ConversationCommand;
      if (runner.reason === "cancel") end = { type: "cancelReply", at, replyId: reply.replyId, usage, costMicros: cost };
      else if (runner.failure) end = { type: "failReply", at, replyId: reply.replyId, usage, costMicros: cost, ...runner.failure };
      else end = { type: "completeReply", at, replyId: reply.replyId, finishReason: runner.finishReason, usage, costMicros: cost };
      await this.o.conversations.execute(id, `end:${reply.replyId}`, at, (s) => this.o.decider.decide(end, s));
      runner.outcome = "ended";
    }
    await this.settle(id, runner.loadedState!, reply.replyId, usage.inputTokens + usage.outputTokens, cost, at);
    // Once the end is appended the next message may be accepted, and its postMessage marks the
    // conversation running again (under the lock, before starting its runner): clearing after that
    // would leave the new reply unmarked, so no one would end it if this worker died.
    await this.o.conversations.exclusive(id, async () => {
      const current = this.runners.get(id);
      if (current === undefined || current === runner) await clearRunning(this.o.redis, runner.partition, id);
    });
    this.retire(runner);
  }

  /** Commit the real usage on the ledgers; idempotent by reservation id (I8). */
  private async settle(id: string, state: ConversationState, replyId: string, tokens: number, cost: number, at: string): Promise<void> {
    const ctx = state.context;
    const reply = runningReply(state);
    await this.o.ledgers.commit({
      tenantId: ctx.tenantId,
      userId: reply?.userId ?? ctx.ownerId,
      projectId: ctx.projectId,
      reservationId: replyId,
      tokens,
      costMicros: cost,
      at,
    });
  }

  /** End a reply whose runner is gone: failed (worker lost) or cancelled, billed for what was generated. */
  private async endOrphan(id: string, state: ConversationState, why: "cancel" | "lost", at: string): Promise<void> {
    const reply = runningReply(state);
    if (!reply) return;
    const usage = this.usageSoFar(reply.prompt, reply.inputTokens, reply.nextIndex, reply.text);
    const cost = costMicros(this.o.prices, reply.model, usage);
    const end: ConversationCommand =
      why === "cancel"
        ? { type: "cancelReply", at, replyId: reply.replyId, usage, costMicros: cost }
        : { type: "failReply", at, replyId: reply.replyId, usage, costMicros: cost, code: "WORKER_LOST", message: "the worker running this reply stopped" };
    await this.appendUnlocked(id, `end:${reply.replyId}`, at, end);
    await this.settle(id, state, reply.replyId, usage.inputTokens + usage.outputTokens, cost, at);
    await clearRunning(this.o.redis, partitionOf(id, this.o.partitions), id);
  }

  /** What a reply cut short after `deltas` pieces has used: the responder's count when it has one. */
  private usageSoFar(prompt: string, inputTokens: number, deltas: number, text: string): { inputTokens: number; outputTokens: number } {
    const u = this.o.responder.usageSoFar?.(prompt, deltas, text);
    return u ?? { inputTokens, outputTokens: estimateTokens(text) };
  }

  // ---- partition hand-over

  /**
   * A worker that acquired `partition` ends every reply the previous owner left running, and
   * settles replies that ended without their usage being committed (crash between the two).
   */
  async recoverPartition(partition: number): Promise<number> {
    let recovered = 0;
    for (const id of await listRunning(this.o.redis, partition)) {
      if (this.runners.has(id)) continue;
      try {
        await this.o.conversations.exclusive(id, async () => {
          // Re-checked under the lock: postMessage marks, appends and starts its runner while holding
          // it, so a sweep never mistakes a reply being started for an orphan.
          if (this.runners.has(id)) return;
          const loaded = await this.o.conversations.load(id, { fresh: true });
          const at = this.now().toISOString();
          if (runningReply(loaded.state)) {
            await this.endOrphan(id, loaded.state, "lost", at);
          } else {
            await this.settleLastReply(id, loaded.state, at);
            await clearRunning(this.o.redis, partition, id);
          }
        });
        recovered++;
      } catch (e) {
        this.o.log.error({ err: errorMessage(e), conversationId: id }, "could not recover conversation");
      }
    }
    return recovered;
  }

  /** Re-commit the last finished reply's usage (a no-op on the ledger when it was committed). */
  private async settleLastReply(id: string, state: ConversationState, at: string): Promise<void> {
    let seen = 0;
    for await (const { event } of this.newestFirst(id, 20)) {
      if (++seen > 20) return; // the last reply ends within the last few events, or is long settled
      if (event.type !== "assistant.completed" && event.type !== "assistant.cancelled" && event.type !== "assistant.failed") continue;
      const d = event.data as { messageId: string; usage: { inputTokens: number; outputTokens: number }; costMicros: number };
      const ctx = state.context;
      await this.o.ledgers.commit({
        tenantId: ctx.tenantId,
        userId: ctx.ownerId,
        projectId: ctx.projectId,
        reservationId: d.messageId,
        tokens: d.usage.inputTokens + d.usage.outputTokens,
        costMicros: d.costMicros,
        at,
      });
      return;
    }
  }

  /** Stop replies of a partition this worker no longer owns, leaving them to the next owner. */
  releasePartition(partition: number): void {
    for (const [id, r] of this.runners) {
      if (r.partition !== partition) continue;
      r.stop("handover");
      this.runners.delete(id);
    }
    this.o.conversations.evictWhere((id) => partitionOf(id, this.o.partitions) === partition);
  }

  /** Graceful stop: let running replies finish for up to `graceMs`, then leave them to the next owner. */
  async stop(graceMs = 5000): Promise<void> {
    const all = [...this.runners.values()];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all.map((r) => r.whenDone())), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    // A pending grace timer would keep an idle process alive for the whole grace period.
    clearTimeout(timer);
    for (const r of this.runners.values()) {
      r.stop("shutdown");
    }
    await Promise.all([...this.runners.values()].map((r) => r.whenDone()));
  }

  status(id: string, state: ConversationState): string {
    return this.runners.has(id) ? "replying" : conversationStatus(state);
  }
}
