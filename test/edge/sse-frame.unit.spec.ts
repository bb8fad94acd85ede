import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../core/envelope.js";
import { sseFrame } from "../../edge/sse/frame.js";

describe("SSE frame (CONTRACT §5)", () => {
  const envelope = fc.record({
    conversationId: fc.string({ minLength: 1, maxLength: 40 }),
    offset: fc.tuple(fc.nat(), fc.nat()).map(([ms, seq]) => `${ms}-${seq}`),
    version: fc.integer({ min: 1 }),
    type: fc.constantFrom("conversation.created", "message.received", "assistant.delta", "assistant.completed"),
    at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    data: fc.jsonValue(),
  });

  it("is id, event and one data line carrying the envelope, ended by a blank line — whatever the text contains", () => {
    fc.assert(
      fc.property(envelope, (env: Envelope) => {
        const frame = sseFrame(env);
        expect(frame.endsWith("\n\n")).toBe(true);
        const lines = frame.slice(0, -2).split("\n");
        expect(lines).toHaveLength(3);
        expect(lines[0]).toBe(`id: ${env.offset}`);
        expect(lines[1]).toBe(`event: ${env.type}`);
        expect(lines[2]?.startsWith("data: ")).toBe(true);
        // No bare CR either: SSE treats \r as a line end too.
        expect(frame.includes("\r")).toBe(false);
        expect(JSON.parse((lines[2] as string).slice(6))).toEqual(JSON.parse(JSON.stringify(env)));
      }),
    );
  });
});
