/**
 * UTC day arithmetic for the daily quota reset. Pure: it parses the ISO time that came with the
 * command, it never reads the clock.
 */
const DAY_MS = 86_400_000;

export function parseInstant(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO-8601 time: ${iso}`);
  return ms;
}

/** The last day printed, by day number: commands of one day all ask for the same string. */
let memoDay = Number.NaN;
let memoText = "";

/** "2026-11-21T23:55:03Z" → "2026-11-21". */
export function utcDay(iso: string): string {
  // Every ledger command asks (the daily reset). Date.parse still reads the instant (so offsets,
  // "T24:00" and 30 February roll over as before); only printing the day is memoised — a Date and
  // its ISO string per command were a visible share of a ledger decision.
  const day = Math.floor(parseInstant(iso) / DAY_MS);
  if (day !== memoDay) {
    memoText = new Date(day * DAY_MS).toISOString().slice(0, 10);
    memoDay = day;
  }
  return memoText;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The UTC midnight that ends `dayOrInstant`'s day, as ISO: "2026-11-21" (a day) or
 * "2026-11-21T15:04:05Z" (an instant in it) → "2026-11-22T00:00:00.000Z".
 */
export function nextMidnight(dayOrInstant: string): string {
  const day = DAY_RE.test(dayOrInstant) ? dayOrInstant : utcDay(dayOrInstant);
  return new Date(parseInstant(`${day}T00:00:00.000Z`) + DAY_MS).toISOString();
}

/** Whole seconds from `at` until `until` (at least 1, for a Retry-After header). */
export function secondsUntil(at: string, until: string): number {
  return Math.max(1, Math.ceil((parseInstant(until) - parseInstant(at)) / 1000));
}

export function addMs(iso: string, ms: number): string {
  return new Date(parseInstant(iso) + ms).toISOString();
}
