import { costMicros } from "./cost.js";
import type { PriceTable } from "./prices.js";
import { estimatePromptTokens } from "./tokens.js";

/**
 * What a message reserves before its reply starts (DESIGN §Actors): `input + maxTokens` tokens on
 * the user's ledger and the cost of that many tokens on the project budget. The responder never
 * produces more than `maxTokens` output tokens, so the commit fits the reservation unless the real
 * input count exceeds the estimate (then the ledger clamps, see docs/actors.md).
 */
export interface ReservationAmounts {
  inputTokens: number;
  tokens: number;
  costMicros: number;
}

export function reservationFor(table: PriceTable, model: string, promptText: string, maxTokens: number): ReservationAmounts {
  const inputTokens = estimatePromptTokens(promptText);
  return {
    inputTokens,
    tokens: inputTokens + maxTokens,
    costMicros: costMicros(table, model, { inputTokens, outputTokens: maxTokens }),
  };
}
