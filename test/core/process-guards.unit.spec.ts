import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { installProcessGuards } from "../../core/process-guards.js";

describe("process guards of the long-running roles", () => {
  it("log an unhandled rejection and keep the process; uninstall removes exactly their listeners", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = pino({ level: "info" }, sink);
    const before = process.listeners("unhandledRejection");
    const uninstall = installProcessGuards(log);
    const added = process.listeners("unhandledRejection").filter((l) => !before.includes(l));
    expect(added).toHaveLength(1);
    // Call the listener directly: emitting the event would also reach the test runner's own handler.
    (added[0] as (reason: unknown) => void)(new TypeError("args is not iterable"));
    expect(process.exitCode ?? 0).toBe(0);
    expect(lines.join("")).toContain("unhandled promise rejection");
    expect(lines.join("")).toContain("args is not iterable");
    uninstall();
    expect(process.listeners("unhandledRejection")).toEqual(before);
  });
});
