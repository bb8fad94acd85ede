export { DEFAULT_TIERS, tierRank, type TierLimits, type TierTable } from "./tiers.js";
export { DEFAULT_MODEL, DEFAULT_PRICES, ModelPrice, PriceTable, priceOf, parsePriceTable } from "./prices.js";
export { costMicros, addMicros } from "./cost.js";
export { estimateTokens, estimatePromptTokens, MESSAGE_OVERHEAD_TOKENS } from "./tokens.js";
export { reservationFor, type ReservationAmounts } from "./reservation.js";
export { utcDay, nextMidnight, secondsUntil, addMs, parseInstant } from "./day.js";
