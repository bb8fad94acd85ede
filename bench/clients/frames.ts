/**
 * Cheap field extraction from an envelope's JSON text. At tens of thousands of events/s a full
 * JSON.parse per event in the client processes would eat the CPU the servers are measured with; the
 * envelope (CONTRACT §4) carries `"offset":"<ms>-<seq>"`, and the stream id's milliseconds are the
 * append time Redis assigned, so append → client latency needs only those digits.
 */
const OFFSET_KEY = '"offset":"';

/** The millisecond part of the first `"offset":"…"` in `text`, or NaN. */
export function offsetMillis(text: string, from = 0): number {
  const i = text.indexOf(OFFSET_KEY, from);
  if (i < 0) return NaN;
  const start = i + OFFSET_KEY.length;
  let end = start;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if (c < 48 || c > 57) break;
    end++;
  }
  return end > start ? Number(text.slice(start, end)) : NaN;
}

/** The first `"offset":"…"` of `text` ("" if none): the whole stream id, for tracing. */
export function offsetOf(text: string): string {
  const i = text.indexOf(OFFSET_KEY);
  if (i < 0) return "";
  const start = i + OFFSET_KEY.length;
  const end = text.indexOf('"', start);
  return end > start ? text.slice(start, end) : "";
}

/** The first delta of a reply: its messageId, when `text` is an `assistant.delta` with index 0. */
export function firstDeltaMessageId(text: string): string | undefined {
  if (!text.includes('"assistant.delta"') || !/"index":0[,}]/.test(text)) return undefined;
  const m = /"messageId":"([^"]+)"/.exec(text);
  return m?.[1];
}

/**
 * Splits complete SSE events off a buffer: returns the `data:` payloads of every complete event and
 * the unfinished remainder. Comments (`: ping`) and other fields are skipped.
 */
export function splitSse(buffer: string): { data: string[]; rest: string } {
  const data: string[] = [];
  let start = 0;
  for (;;) {
    const end = buffer.indexOf("\n\n", start);
    if (end < 0) break;
    const block = buffer.slice(start, end);
    start = end + 2;
    for (const line of block.split("\n")) if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return { data, rest: buffer.slice(start) };
}
