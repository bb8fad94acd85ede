/**
 * Deterministic token estimates. A reservation needs the input size before any model has counted
 * it; we use the common ~4 characters per token rule (counted in Unicode code points, so an emoji is
 * not two tokens) plus a small fixed overhead per message for role and framing. The estimate is
 * written into the event that uses it, so changing this function never changes history.
 */
export const MESSAGE_OVERHEAD_TOKENS = 4;

export function estimateTokens(text: string): number {
  let codePoints = 0;
  for (const _ of text) codePoints++;
  return Math.ceil(codePoints / 4);
}

/** Input tokens of one user message as a prompt. */
export function estimatePromptTokens(text: string): number {
  return estimateTokens(text) + MESSAGE_OVERHEAD_TOKENS;
}
