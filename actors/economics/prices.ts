import { z } from "zod";

/**
 * Model prices in micro-units (1e-6 of the currency unit) per million tokens, as integers. Prices are
 * configuration; the cost of a reply is computed once, when it ends, and written into the event
 * (`costMicros`), so spend reports and `reconcile` read it from the log and never re-price history.
 */
export const ModelPrice = z.object({
  inputPerMTok: z.number().int().nonnegative(),
  outputPerMTok: z.number().int().nonnegative(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

export const PriceTable = z.object({
  /** Used for any model not listed. */
  default: ModelPrice,
  models: z.record(z.string(), ModelPrice),
});
export type PriceTable = z.infer<typeof PriceTable>;

/** The simulated responder's model is priced like a small hosted model so spend reports show numbers. */
export const DEFAULT_MODEL = "sim-1";

export const DEFAULT_PRICES: PriceTable = {
  default: { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 },
  models: {
    "sim-1": { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 },
    "gpt-4o-mini": { inputPerMTok: 150_000, outputPerMTok: 600_000 },
    "gpt-4o": { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000 },
    "gpt-4.1-mini": { inputPerMTok: 400_000, outputPerMTok: 1_600_000 },
  },
};

export function priceOf(table: PriceTable, model: string): ModelPrice {
  return Object.hasOwn(table.models, model) ? (table.models[model] as ModelPrice) : table.default;
}

/** Parse a JSON price table (e.g. from an environment variable); throws a ZodError on bad input. */
export function parsePriceTable(json: string): PriceTable {
  return PriceTable.parse(JSON.parse(json));
}
