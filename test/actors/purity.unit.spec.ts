import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * STYLE §3: the deciders and the pure kernel import no I/O library (and no node:* module), so they
 * can run anywhere, replay deterministically and be tested without services. Checked on the source
 * text, like a no-restricted-imports lint rule.
 */
const ROOT = join(import.meta.dirname, "..", "..");
const PURE = [
  "actors/decider.ts",
  "actors/machine-decider.ts",
  "actors/digest.ts",
  "actors/bucket-map.ts",
  "actors/conversation",
  "actors/session",
  "actors/ledger",
  "actors/economics",
  "core/events",
];
const FORBIDDEN = /from\s+["'](ioredis|pg|kysely|@aws-sdk\/[^"']+|uWebSockets\.js|node:[^"']+|fs|net|http|crypto)["']/;

function files(path: string): string[] {
  const full = join(ROOT, path);
  if (statSync(full).isFile()) return [path];
  return readdirSync(full).flatMap((name) => files(join(path, name))).filter((p) => p.endsWith(".ts"));
}

describe("purity of the deciders", () => {
  it.each(PURE.flatMap(files))("%s imports no I/O module", (file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    expect(text.match(FORBIDDEN)?.[0]).toBeUndefined();
  });
  it("deciders never read the clock or a random source", () => {
    for (const file of PURE.flatMap(files)) {
      const text = readFileSync(join(ROOT, file), "utf8");
      expect(/Date\.now\(|new Date\(\)|Math\.random\(|performance\.now\(|randomUUID/.exec(text)?.[0], file).toBeUndefined();
    }
  });
});
