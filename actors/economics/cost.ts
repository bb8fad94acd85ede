import type { Usage } from "../../core/events/conversation.js";
import { priceOf, type PriceTable } from "./prices.js";

const PER_MILLION = 1_000_000n;

/**
 * Cost of a usage in micro-units. tokens × price-per-million can pass 2^53 (a million tokens at
 * 10^10 micros/M), so the product is taken in BigInt. Rounding is up (ceiling) on the sum, once:
 * any non-zero usage of a priced model costs at least one micro-unit, and the rule is the same for
 * reservations and commits, so a commit never costs more than its reservation for the same tokens.
 */
export function costMicros(table: PriceTable, model: string, usage: Usage): number {
  const p = priceOf(table, model);
  const numerator = BigInt(usage.inputTokens) * BigInt(p.inputPerMTok) + BigInt(usage.outputTokens) * BigInt(p.outputPerMTok);
  const micros = (numerator + PER_MILLION - 1n) / PER_MILLION;
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`cost ${micros} exceeds the safe integer range`);
  return Number(micros);
}

/** Sum of integer micro-amounts, refusing to lose precision. */
export function addMicros(a: number, b: number): number {
  const s = a + b;
  if (!Number.isSafeInteger(s)) throw new RangeError(`micro-amount ${a} + ${b} exceeds the safe integer range`);
  return s;
}
