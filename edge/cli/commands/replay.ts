import type { Command } from "commander";
import { z } from "zod";
import { history } from "../../../core/audit/history.js";
import { decodeEvent } from "../../../core/codec.js";
import { toEnvelope, type Envelope, type RecordedEvent } from "../../../core/envelope.js";
import { errorMessage } from "../../../core/errors.js";
import type { StreamRef } from "../../../core/keys.js";
import { withContext } from "../context.js";
import { CheckFailed } from "../exit-codes.js";
import { historySources } from "../history.js";
import { AggregateId, Offset, parseArgs } from "../stream-args.js";

/**
 * `tributary replay <conversationId> [--from OFFSET] [--to OFFSET] [--format ndjson|text]`:
 * the conversation's events in order as CONTRACT §4 envelopes, one JSON object a line (or a readable
 * transcript), from the archive and then Redis. `--from` is exclusive, `--to` inclusive (§5).
 */
/**
 * Stream ids start with the append's millisecond, so an instant bounds a range as well as an offset
 * does: `--from TIME` starts with the first event appended at or after TIME, `--to TIME` ends with the
 * last event appended at or before it.
 */
const MAX_SEQ = "18446744073709551615";
// An exclusive start at the very last sequence number cannot be incremented by Redis; one below it
// is as good (no real entry id comes near 2^64 − 2).
const MAX_SEQ_BEFORE = "18446744073709551614";
const Instant = z.iso.datetime({ offset: true }).transform((t) => Date.parse(t));
const FromBound = z.union([Offset, Instant.transform((ms) => (ms <= 0 ? "0" : `${ms - 1}-${MAX_SEQ_BEFORE}`))]);
const ToBound = z.union([Offset, Instant.transform((ms) => `${Math.max(0, ms)}-${MAX_SEQ}`)]);

const ReplayArgs = z.object({
  conversationId: AggregateId,
  from: FromBound.optional(),
  to: ToBound.optional(),
  format: z.enum(["ndjson", "text"]),
});

/** One readable line per event; text fields are JSON-quoted so every event stays on one line. */
export function transcriptLine(e: Envelope): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  const q = (v: unknown): string => JSON.stringify(v ?? null);
  const usage = (u: unknown): string => {
    const x = (u ?? {}) as { inputTokens?: unknown; outputTokens?: unknown };
    return `in=${String(x.inputTokens ?? "?")} out=${String(x.outputTokens ?? "?")}`;
  };
  let body: string;
  switch (e.type) {
    case "conversation.created":
      body = `title=${q(d.title)} model=${String(d.model)} owner=${String(d.ownerId)} tenant=${String(d.tenantId)}`;
      break;
    case "message.received":
      body = `user ${String(d.userId)} [${String(d.messageId)}]: ${q(d.text)}`;
      break;
    case "message.rejected":
      body = `rejected ${String(d.clientMessageId)}: ${String(d.code)} ${q(d.message)}`;
      break;
    case "assistant.started":
      body = `assistant [${String(d.messageId)}] replying to ${String(d.replyTo)} with ${String(d.model)}`;
      break;
    case "assistant.delta":
      body = `assistant [${String(d.messageId)}] #${String(d.index)} ${q(d.text)}`;
      break;
    case "assistant.completed":
      body = `assistant [${String(d.messageId)}]: ${q(d.text)} (${String(d.finishReason)}, ${usage(d.usage)}, costMicros=${String(d.costMicros)})`;
      break;
    case "assistant.cancelled":
    case "assistant.failed":
      body = `assistant [${String(d.messageId)}] ${e.type.slice("assistant.".length)} (${usage(d.usage)}, costMicros=${String(d.costMicros)}${d.code ? `, ${String(d.code)}` : ""}${d.message ? ` ${q(d.message)}` : ""})`;
      break;
    default:
      body = q(e.data);
  }
  return `${e.offset} v${e.version} ${e.at} ${e.type} ${body}`;
}

/** Write a line, waiting for the pipe to drain so a long replay never buffers in memory. */
async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
}

export function registerReplay(program: Command): void {
  program
    .command("replay")
    .description("print a conversation's events in order (CONTRACT §4 envelopes), from the archive and Redis")
    .argument("<conversationId>", "the conversation's id")
    .option("--from <offset|time>", "start after this offset (exclusive; 0 = the beginning), or at this ISO-8601 instant")
    .option("--to <offset|time>", "stop at this offset or ISO-8601 instant (inclusive)")
    .option("--format <format>", "ndjson or text", "ndjson")
    .action(async (conversationId: string, opts: { from?: string; to?: string; format: string }) => {
      const args = parseArgs(ReplayArgs, { conversationId, ...opts });
      await withContext(async (ctx) => {
        const sources = await historySources(ctx);
        const ref: StreamRef = { kind: "conversation", id: args.conversationId };
        const range: { from?: string; to?: string } = {};
        if (args.from !== undefined) range.from = args.from;
        if (args.to !== undefined) range.to = args.to;
        let printed = 0;
        for await (const entry of history(sources, ref, range)) {
          let rec;
          try {
            rec = decodeEvent(entry.bytes);
          } catch (e) {
            throw new CheckFailed(`conversation ${args.conversationId}: entry ${entry.offset} cannot be decoded: ${errorMessage(e)}`);
          }
          const recorded: RecordedEvent = { stream: ref, offset: entry.offset, version: rec.version, type: rec.type, at: rec.at, data: rec.data, hash: entry.hash };
          const env = toEnvelope(recorded);
          await writeLine(args.format === "text" ? transcriptLine(env) : JSON.stringify(env));
          printed += 1;
        }
        if (printed === 0 && range.from === undefined && range.to === undefined) {
          // Nothing at all: distinguish "no such conversation" from an empty range.
          const head = await sources.redis.head(ref);
          if (head.version === 0) throw new CheckFailed(`conversation ${args.conversationId} not found`);
        }
      });
    });
}
