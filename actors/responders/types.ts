/**
 * A responder produces the reply to a message as a stream of text pieces, then one `done` with the
 * real usage. The runtime turns each piece into an `assistant.delta` (one index per piece) and the
 * end into `assistant.completed`; aborting `signal` is how a cancel, a hand-over or a shutdown stops
 * it (the stream then rejects with the signal's reason, as fetch does).
 *
 * Two forms of the same thing: `stream` (pull: an async iterable, natural over a fetch body) and
 * `start` (push: chunks handed to a sink, stopped through the handle — natural for timers). A worker
 * holds one reply per running conversation, thousands at once for seconds, and the pull form costs
 * about 3 KB each in generator, AbortSignal and listener; so a responder that can push offers
 * `start`, which the runtime prefers. adapters.ts derives either form from the other.
 *
 * Structurally the same as actors/runtime/responder.ts `ReplyResponder`, so either name works.
 */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ResponderRequest {
  model: string;
  /** The user message being answered. */
  prompt: string;
  /** Earlier turns, oldest first, for responders that use context (OpenAI); the simulated one ignores them. */
  history?: ChatMessage[];
  maxTokens: number;
  signal: AbortSignal;
  /** Pieces an earlier owner already appended: a resumed reply continues after them. */
  skip?: number;
}

export type ResponderChunk =
  | { kind: "delta"; text: string }
  | { kind: "done"; finishReason: string; usage: { inputTokens: number; outputTokens: number } };

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** A reply's request in the push form: stopping goes through the handle, not a signal. */
export type ReplyRequest = Omit<ResponderRequest, "signal">;

/**
 * Where a started reply goes: its chunks in order (the pieces, then one `done`), then `end()` —
 * with the cause when the responder failed, after the chunks it produced first. Calls after
 * `end()` are ignored.
 */
export interface ReplySink {
  push(chunk: ResponderChunk): void;
  end(failure?: { cause: unknown }): void;
}

/** A started reply. After `stop()` the responder calls the sink no more and holds nothing. */
export interface ReplyHandle {
  stop(): void;
}

export type StartReply = (req: ReplyRequest, sink: ReplySink) => ReplyHandle;

export interface Responder {
  /** Whether `skip > 0` continues the same reply (true) or is refused (the runtime then fails the reply). */
  readonly resumable: boolean;
  stream(req: ResponderRequest): AsyncIterable<ResponderChunk>;
  /** The push form, when the responder has one (the runtime then uses it instead of `stream`). */
  start?: StartReply;
  /**
   * The usage to bill for a reply that ended before its `done` (cancelled, failed, its worker lost),
   * from what the conversation recorded: the prompt, the number of deltas and their text. Counted
   * the way this responder counts, so a cancelled reply is billed like a completed one would be.
   */
  usageSoFar(prompt: string, deltas: number, text: string): Usage;
}
