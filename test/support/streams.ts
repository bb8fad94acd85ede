import { randomUUID } from "node:crypto";
import type { StreamRef } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";

/** A fresh conversation whose id hashes to partition `p` of `partitions` (tests of one partition's log or group). */
export function conversationInPartition(p: number, partitions: number, idPrefix = "c"): StreamRef {
  for (;;) {
    const id = `${idPrefix}-${randomUUID()}`;
    if (partitionOf(id, partitions) === p) return { kind: "conversation", id };
  }
}
