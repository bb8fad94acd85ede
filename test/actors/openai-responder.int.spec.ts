import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpenAIResponder, type ResponderChunk } from "../../actors/responders/index.js";
import { estimatePromptTokens, estimateTokens } from "../../actors/economics/index.js";
import { TributaryError } from "../../core/errors.js";

/**
 * The OpenAI-compatible client against a small fake of the external API (node:http on loopback,
 * random port). Each test picks the fake's behaviour through the model name it sends.
 */
interface Seen {
  path: string;
  auth: string | undefined;
  body: Record<string, unknown>;
}

let server: Server;
let baseUrl: string;
const seen: Seen[] = [];
let closedEarly = 0;

function chunk(content: string | null, finish: string | null = null): string {
  return `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = "";
  for await (const part of req) raw += String(part);
  const body = JSON.parse(raw) as Record<string, unknown>;
  seen.push({ path: req.url ?? "", auth: req.headers.authorization, body });
  const model = String(body.model);
  if (model === "bad-model") {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "model not found" } }));
    return;
  }
  if (model === "busy") {
    res.writeHead(429, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "slow down" } }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  if (model === "hang") {
    // Two pieces, then nothing until the client goes away.
    res.write(chunk("one"));
    res.write(chunk(" two"));
    res.on("close", () => closedEarly++);
    return;
  }
  if (model === "truncated") {
    res.write(chunk("cut"));
    res.end();
    return;
  }
  res.write(": keep-alive\n\n");
  res.write(chunk(null));
  // Split one event across writes, with CRLF line ends, as proxies do.
  res.write('data: {"choices":[{"index":0,"delta":{"content":"Hel');
  res.write('lo"},"finish_reason":null}]}\r\n\r\n');
  res.write(chunk(", world"));
  res.write(chunk(null, model === "long" ? "length" : "stop"));
  if (model !== "no-usage") {
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function collect(it: AsyncIterable<ResponderChunk>): Promise<ResponderChunk[]> {
  const out: ResponderChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe("openai responder against a local fake server", () => {
  it("streams deltas and takes usage from the final chunk", async () => {
    const r = createOpenAIResponder({ baseUrl, apiKey: "sk-test" });
    const out = await collect(r.stream({ model: "gpt-4o-mini", prompt: "Say hello", maxTokens: 50, signal: new AbortController().signal }));
    expect(out).toEqual([
      { kind: "delta", text: "Hello" },
      { kind: "delta", text: ", world" },
      { kind: "done", finishReason: "stop", usage: { inputTokens: 11, outputTokens: 3 } },
    ]);
    const req = seen.at(-1);
    expect(req?.path).toBe("/v1/chat/completions");
    expect(req?.auth).toBe("Bearer sk-test");
    expect(req?.body).toMatchObject({
      model: "gpt-4o-mini",
      stream: true,
      max_tokens: 50,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Say hello" }],
    });
  });
  it("sends history, maps the simulated model to the default, reports finish_reason", async () => {
    const r = createOpenAIResponder({ baseUrl, defaultModel: "long" });
    const out = await collect(
      r.stream({
        model: "sim-1",
        prompt: "and now?",
        history: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }],
        maxTokens: 5,
        signal: new AbortController().signal,
      }),
    );
    expect(out.at(-1)).toMatchObject({ kind: "done", finishReason: "length" });
    const req = seen.at(-1);
    expect(req?.auth).toBeUndefined();
    expect(req?.body.model).toBe("long");
    expect(req?.body.messages).toHaveLength(3);
  });
  it("estimates usage when the server sends none", async () => {
    const r = createOpenAIResponder({ baseUrl });
    const out = await collect(r.stream({ model: "no-usage", prompt: "Say hello", maxTokens: 50, signal: new AbortController().signal }));
    expect(out.at(-1)).toEqual({
      kind: "done",
      finishReason: "stop",
      usage: { inputTokens: estimatePromptTokens("Say hello"), outputTokens: estimateTokens("Hello, world") },
    });
  });
  it("an error status is a TributaryError; 4xx permanent, 429 not", async () => {
    const r = createOpenAIResponder({ baseUrl });
    const signal = new AbortController().signal;
    const bad = await collect(r.stream({ model: "bad-model", prompt: "x", maxTokens: 5, signal })).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TributaryError);
    expect((bad as TributaryError).message).toContain("model not found");
    expect((bad as TributaryError).permanent).toBe(true);
    const busy = await collect(r.stream({ model: "busy", prompt: "x", maxTokens: 5, signal })).catch((e: unknown) => e);
    expect((busy as TributaryError).permanent).toBe(false);
  });
  it("a stream that ends before [DONE] fails", async () => {
    const r = createOpenAIResponder({ baseUrl });
    await expect(collect(r.stream({ model: "truncated", prompt: "x", maxTokens: 5, signal: new AbortController().signal }))).rejects.toThrow(/before \[DONE\]/);
  });
  it("aborting the signal stops the request mid-stream and closes the connection", async () => {
    const r = createOpenAIResponder({ baseUrl });
    const ac = new AbortController();
    const got: ResponderChunk[] = [];
    const closedBefore = closedEarly;
    await expect(
      (async () => {
        for await (const c of r.stream({ model: "hang", prompt: "x", maxTokens: 5, signal: ac.signal })) {
          got.push(c);
          if (got.length === 2) ac.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(got).toEqual([
      { kind: "delta", text: "one" },
      { kind: "delta", text: " two" },
    ]);
    // The server sees the client go away (no timing assumption: wait for the event itself).
    await new Promise<void>((resolve) => {
      const check = () => (closedEarly > closedBefore ? resolve() : setImmediate(check));
      check();
    });
  });
  it("refuses to resume", async () => {
    const r = createOpenAIResponder({ baseUrl });
    expect(r.resumable).toBe(false);
    await expect(collect(r.stream({ model: "gpt-4o-mini", prompt: "x", maxTokens: 5, signal: new AbortController().signal, skip: 3 }))).rejects.toThrow(/cannot be resumed/);
  });
  it("an unreachable server is UNAVAILABLE", async () => {
    const r = createOpenAIResponder({ baseUrl: "http://127.0.0.1:1/v1" });
    const e = await collect(r.stream({ model: "gpt-4o-mini", prompt: "x", maxTokens: 5, signal: new AbortController().signal })).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TributaryError);
    expect((e as TributaryError).code).toBe("UNAVAILABLE");
  });
});
