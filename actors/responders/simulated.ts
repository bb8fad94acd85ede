import { fnv1a32 } from "../../core/partition.js";
import { estimatePromptTokens } from "../economics/tokens.js";
import { streamOf } from "./adapters.js";
import type { ReplyHandle, ReplyRequest, ReplySink, Responder } from "./types.js";

/**
 * The simulated responder: deterministic text derived from the message — the same prompt and model
 * give the same pieces, so a resumed reply (`skip`) continues exactly where the dead owner stopped
 * and tests can predict every delta. One piece = one token. Paced at `tokensPerSec` against a
 * schedule fixed at the start, so a slow consumer does not make the reply longer than it should be.
 */
export interface SimulatedOptions {
  /** SIM_TOKENS_PER_SEC [50]. */
  tokensPerSec: number;
  /** SIM_MAX_TOKENS [64]: the natural length of every reply. */
  maxTokens: number;
}

const WORDS = [
  "the", "stream", "event", "actor", "reply", "token", "quota", "ledger", "offset", "partition",
  "consumer", "group", "snapshot", "version", "append", "replay", "archive", "resume", "client", "server",
  "message", "delta", "state", "machine", "command", "decide", "evolve", "fold", "hash", "chain",
  "exactly", "once", "at", "least", "in", "order", "every", "each", "never", "always",
  "fast", "durable", "pure", "simple", "small", "quiet", "bright", "steady", "careful", "honest",
  "and", "of", "to", "with", "from", "for", "on", "by", "is", "are",
  "Redis", "Postgres", "XState", "Tributary",
] as const;

/** mulberry32: a tiny seeded PRNG, enough to pick words reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The i-th pieces of the simulated reply to `prompt` (pure; exported for tests and `tributary state`). */
export function simulatedPieces(model: string, prompt: string, count: number): string[] {
  const next = prng(fnv1a32(`${model}\u0000${prompt}`));
  const out: string[] = [];
  let sentenceStart = true;
  for (let i = 0; i < count; i++) {
    let word: string = WORDS[Math.floor(next() * WORDS.length)] ?? "the";
    if (sentenceStart) word = word.charAt(0).toUpperCase() + word.slice(1);
    const last = i === count - 1;
    const endSentence = last || next() < 0.12;
    out.push(`${i === 0 ? "" : " "}${word}${endSentence ? "." : ""}`);
    sentenceStart = endSentence;
  }
  return out;
}

export function createSimulatedResponder(opts: SimulatedOptions): Responder {
  if (!(opts.tokensPerSec > 0)) throw new RangeError("tokensPerSec must be > 0");
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new RangeError("maxTokens must be a positive integer");
  const intervalMs = 1000 / opts.tokensPerSec;

  /**
   * The push form is the native one (types.ts): one timer at a time per reply, no generator and no
   * AbortSignal, because a worker holds thousands of these for seconds. Pieces that are due by the
   * time the timer fires go out together.
   */
  function start(req: ReplyRequest, sink: ReplySink): ReplyHandle {
    const count = Math.min(req.maxTokens, opts.maxTokens);
    const skip = Math.min(req.skip ?? 0, count);
    const pieces = simulatedPieces(req.model, req.prompt, count);
    const begin = performance.now();
    let i = skip;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = (): void => {
      timer = undefined;
      for (; i < count; i++) {
        const wait = begin + (i - skip + 1) * intervalMs - performance.now();
        if (wait > 0) {
          timer = setTimeout(tick, wait);
          return;
        }
        sink.push({ kind: "delta", text: pieces[i] ?? "" });
        if (stopped) return; // stopped by the sink, from inside push
      }
      sink.push({
        kind: "done",
        finishReason: req.maxTokens < opts.maxTokens ? "length" : "stop",
        usage: { inputTokens: estimatePromptTokens(req.prompt), outputTokens: count },
      });
      sink.end();
    };
    tick();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  // One piece is one token here, so the deltas are the output tokens.
  const usageSoFar = (prompt: string, deltas: number) => ({ inputTokens: estimatePromptTokens(prompt), outputTokens: deltas });
  return { resumable: true, start, stream: streamOf(start), usageSoFar };
}
