/**
 * A minimal Server-Sent Events reader for the responder's HTTP stream: yields the `data` of each
 * event (several `data:` lines joined by "\n", per the SSE spec), ignores comments and the other
 * fields. Lines may end in "\n", "\r\n" or "\r", and may be split anywhere across network chunks.
 * Small on purpose: the only SSE parser in node_modules is a dev dependency.
 */
export async function* readSseData(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let data: string[] = [];
  let pendingCR = false;

  function* lines(flush: boolean): Generator<string> {
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer[i];
      if (pendingCR) {
        pendingCR = false;
        // "\r\n": the "\n" belongs to the line the "\r" already ended.
        if (ch === "\n") {
          start = i + 1;
          continue;
        }
      }
      if (ch === "\n" || ch === "\r") {
        yield buffer.slice(start, i);
        pendingCR = ch === "\r";
        start = i + 1;
      }
    }
    buffer = buffer.slice(start);
    if (flush && buffer !== "") {
      yield buffer;
      buffer = "";
    }
  }

  function* handle(line: string): Generator<string> {
    if (line === "") {
      if (data.length > 0) yield data.join("\n");
      data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
  }

  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (const line of lines(false)) yield* handle(line);
    }
    buffer += decoder.decode();
    for (const line of lines(true)) yield* handle(line);
    // An event not followed by a blank line at the end of the stream is still delivered.
    if (data.length > 0) yield data.join("\n");
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}
