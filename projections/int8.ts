/**
 * int8 normalisation (DESIGN §Projections, I8).
 *
 * Token counts and `costMicros` are bigint columns. The two drivers disagree on how to return them:
 * `pg` hands int8 (and numeric, e.g. SUM(bigint)) back as strings so that no precision is lost,
 * PGlite as JavaScript numbers. Every query of ours therefore sees one type, `number`, and we refuse
 * silently-rounded money: a value beyond Number.MAX_SAFE_INTEGER (9.007e15 micros ≈ 9 billion
 * currency units) throws instead of being rounded. The same parser is installed on both targets.
 */
export const INT8_OID = 20;
export const NUMERIC_OID = 1700;

export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${text} is outside the exact range of a JavaScript number`);
  return n;
}

/** numeric: integral values (sums of int8) become exact numbers; a fraction is kept as a plain number. */
export function parseNumeric(text: string): number {
  if (/^-?\d+$/.test(text)) return parseInt8(text);
  return Number(text);
}

/** For values that arrive already parsed (PGlite, or rows built in memory): number | bigint | string → number. */
export function toInt(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new RangeError(`not an exact integer: ${value}`);
    return value;
  }
  if (typeof value === "bigint") return parseInt8(value.toString());
  if (typeof value === "string") return parseInt8(value);
  throw new TypeError(`expected an integer, got ${typeof value}`);
}
