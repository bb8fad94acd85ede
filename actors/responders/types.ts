/**
 * A responder produces the reply to a message as a stream of text pieces, then one `done` with the
 * real usage. The runtime turns each piece into an `assistant.delta` (one index per piece) and the
 * end into `assistant.completed`; aborting `signal` is how a cancel, a hand-over or a shutdown stops
 * it (the stream then rejects with the signal's reason, as fetch does).
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

export interface Responder {
  /** Whether `skip > 0` continues the same reply (true) or is refused (the runtime then fails the reply). */
  readonly resumable: boolean;
  stream(req: ResponderRequest): AsyncIterable<ResponderChunk>;
  /**
   * The usage to bill for a reply that ended before its `done` (cancelled, failed, its worker lost),
   * from what the conversation recorded: the prompt, the number of deltas and their text. Counted
   * the way this responder counts, so a cancelled reply is billed like a completed one would be.
   */
  usageSoFar(prompt: string, deltas: number, text: string): Usage;
}
