import { z } from "zod";
import { TributaryError } from "../../core/errors.js";
import { estimatePromptTokens, estimateTokens } from "../economics/tokens.js";
import { readSseData } from "./sse.js";
import type { ChatMessage, Responder, ResponderChunk, ResponderRequest } from "./types.js";

/**
 * An OpenAI-compatible streaming chat-completions client over fetch: `POST {baseUrl}/chat/completions`
 * with `stream: true` and `stream_options.include_usage`, read as Server-Sent Events (`data:` lines,
 * ending with `[DONE]`). Usage comes from the final chunk; a server that sends none gets an estimate
 * (the same rule the reservation used), so a reply is never billed zero. The request is aborted by
 * the signal (cancel, hand-over, shutdown).
 *
 * Not resumable: a new request would generate a different continuation, so the runtime fails a
 * reply whose owner died mid-stream (billed for what was generated) instead of resuming it.
 */
export interface OpenAIOptions {
  /** OPENAI_BASE_URL, e.g. "http://127.0.0.1:11434/v1" for a local server. */
  baseUrl: string;
  apiKey?: string | undefined;
  /** Model sent upstream when the conversation's model is the simulated default or empty. */
  defaultModel?: string;
  /** Models that name the simulated responder and must not be sent upstream. */
  simulatedModels?: readonly string[];
  /** Injected for tests of the client itself; the global fetch otherwise. */
  fetch?: typeof fetch;
}

// Only what we read; everything else in a chunk is ignored (loose), as the API keeps adding fields.
const Chunk = z
  .object({
    choices: z
      .array(
        z
          .object({
            delta: z.object({ content: z.string().nullish() }).loose().nullish(),
            finish_reason: z.string().nullish(),
          })
          .loose(),
      )
      .nullish(),
    usage: z
      .object({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() })
      .loose()
      .nullish(),
  })
  .loose();

const ErrorBody = z.object({ error: z.object({ message: z.string() }).loose() }).loose();

export function createOpenAIResponder(opts: OpenAIOptions): Responder {
  const doFetch = opts.fetch ?? fetch;
  const base = opts.baseUrl.replace(/\/+$/, "");
  const simulated = new Set(opts.simulatedModels ?? ["sim-1"]);
  const defaultModel = opts.defaultModel ?? "gpt-4o-mini";

  async function* stream(req: ResponderRequest): AsyncGenerator<ResponderChunk> {
    if ((req.skip ?? 0) > 0) {
      throw new TributaryError("UNAVAILABLE", "an OpenAI-compatible reply cannot be resumed after its stream was lost", { permanent: true });
    }
    const model = req.model === "" || simulated.has(req.model) ? defaultModel : req.model;
    const messages: ChatMessage[] = [...(req.history ?? []), { role: "user", content: req.prompt }];
    const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
    if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;

    let res: Response;
    try {
      res = await doFetch(`${base}/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ model, messages, stream: true, max_tokens: req.maxTokens, stream_options: { include_usage: true } }),
        signal: req.signal,
      });
    } catch (e) {
      if (req.signal.aborted) throw e;
      throw new TributaryError("UNAVAILABLE", `responder unreachable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (!res.ok || res.body === null) {
      const text = await res.text().catch(() => "");
      const parsed = ErrorBody.safeParse(safeJson(text));
      const detail = parsed.success ? parsed.data.error.message : text.slice(0, 200);
      // 4xx (bad model, bad key) will fail the same way again; 429/5xx may pass later.
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 429;
      throw new TributaryError("UNAVAILABLE", `responder answered ${res.status}: ${detail}`, { permanent, details: { status: res.status } });
    }

    let finishReason = "stop";
    let usage: { inputTokens: number; outputTokens: number } | undefined;
    let text = "";
    let sawDone = false;
    for await (const data of readSseData(res.body, req.signal)) {
      if (data === "[DONE]") {
        sawDone = true;
        break;
      }
      const chunk = Chunk.safeParse(safeJson(data));
      if (!chunk.success) throw new TributaryError("UNAVAILABLE", "responder sent a malformed chunk", { details: chunk.error.issues });
      for (const choice of chunk.data.choices ?? []) {
        const piece = choice.delta?.content;
        if (piece) {
          text += piece;
          yield { kind: "delta", text: piece };
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      const u = chunk.data.usage;
      if (u) usage = { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
    }
    req.signal.throwIfAborted();
    if (!sawDone) throw new TributaryError("UNAVAILABLE", "responder stream ended before [DONE]");
    yield {
      kind: "done",
      finishReason,
      usage: usage ?? { inputTokens: messages.reduce((n, m) => n + estimatePromptTokens(m.content), 0), outputTokens: estimateTokens(text) },
    };
  }

  // The server counts tokens only in its final chunk; without it, the same estimate as the reservation.
  const usageSoFar = (prompt: string, _deltas: number, text: string) => ({ inputTokens: estimatePromptTokens(prompt), outputTokens: estimateTokens(text) });
  return { resumable: false, stream, usageSoFar };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
