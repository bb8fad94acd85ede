import { describe, expect, it } from "vitest";
import { TributaryError, VersionConflictError } from "../../core/errors.js";
import { APPEND_LUA, StaleHeadError, parseAppendReply } from "../../core/redis/scripts.js";

const S = "{p1}:es:conversation:c1";

describe("append script return codes (core/redis/scripts.ts)", () => {
  it("maps 0 and 1 to an AppendResult, 1 being a duplicate", () => {
    expect(parseAppendReply(S, 0, [0, 1, 2, "ab", "1-0", "1-1"])).toEqual({
      duplicate: false,
      fromVersion: 1,
      toVersion: 2,
      hash: "ab",
      offsets: ["1-0", "1-1"],
    });
    // Integers may arrive as strings or Buffers (e.g. through a Buffer-mode call): still numbers here.
    expect(parseAppendReply(S, 5, [1, "3", "3", Buffer.from("cd"), Buffer.from("9-0")])).toEqual({
      duplicate: true,
      fromVersion: 3,
      toVersion: 3,
      hash: "cd",
      offsets: ["9-0"],
    });
  });

  it("maps -1 to VersionConflictError (CONFLICT) with the actual version", () => {
    const e = (() => {
      try {
        parseAppendReply(S, 2, [-1, 7, "ff"]);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(VersionConflictError);
    expect(e).toMatchObject({ code: "CONFLICT", status: 409, expected: 2, actual: 7 });
  });

  it("maps -2 to StaleHeadError carrying the real head, -3 and unknown codes to errors", () => {
    expect(() => parseAppendReply(S, 4, [-2, 4, "beef"])).toThrow(StaleHeadError);
    try {
      parseAppendReply(S, 4, [-2, 4, "beef"]);
    } catch (err) {
      expect(err).toMatchObject({ actualVersion: 4, actualHash: "beef" });
    }
    expect(() => parseAppendReply(S, 0, [-3, "bad arguments"])).toThrow(/rejected its arguments/);
    expect(() => parseAppendReply(S, 0, [42])).toThrow(TributaryError);
    expect(() => parseAppendReply(S, 0, "OK")).toThrow(TributaryError);
  });

  it("the script file carries its KEYS/ARGV/return-code header", () => {
    for (const word of ["KEYS[1]", "KEYS[5]", "ARGV[5]", "ARGV[7]", "{ -1, actualVersion, actualHash }", "{ -2, actualVersion, actualHash }"]) {
      expect(APPEND_LUA).toContain(word);
    }
  });
});
