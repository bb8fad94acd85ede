import type { Config } from "../../core/config.js";
import { createOpenAIResponder } from "./openai.js";
import { createSimulatedResponder } from "./simulated.js";
import type { Responder } from "./types.js";

export type { Responder, ResponderRequest, ResponderChunk, ChatMessage, Usage } from "./types.js";
export { createSimulatedResponder, simulatedPieces, type SimulatedOptions } from "./simulated.js";
export { createOpenAIResponder, type OpenAIOptions } from "./openai.js";
export { readSseData } from "./sse.js";

/** The responder named by RESPONDER (CONTRACT §1), configured from the environment. */
export function responderFromConfig(
  cfg: Pick<Config, "RESPONDER" | "OPENAI_BASE_URL" | "OPENAI_API_KEY" | "SIM_TOKENS_PER_SEC" | "SIM_MAX_TOKENS">,
): Responder {
  if (cfg.RESPONDER === "openai") return createOpenAIResponder({ baseUrl: cfg.OPENAI_BASE_URL, apiKey: cfg.OPENAI_API_KEY });
  return createSimulatedResponder({ tokensPerSec: cfg.SIM_TOKENS_PER_SEC, maxTokens: cfg.SIM_MAX_TOKENS });
}
