import { partitionOf } from "./partition.js";

/**
 * Redis key names (DESIGN §Keys). Every key of one partition starts with the hash tag `{pN}`, so a
 * Lua script touching an aggregate stream, its meta, the partition log and the dedupe key runs
 * unchanged on Redis Cluster: they all live in one slot.
 */
export type AggregateKind = "conversation" | "session" | "ledger";

export interface StreamRef {
  kind: AggregateKind;
  id: string;
}

export const tag = (partition: number): string => `{p${partition}}`;

export const keys = {
  stream: (p: number, kind: string, id: string) => `${tag(p)}:es:${kind}:${id}`,
  meta: (p: number, kind: string, id: string) => `${tag(p)}:meta:${kind}:${id}`,
  log: (p: number) => `${tag(p)}:log`,
  cmd: (p: number) => `${tag(p)}:cmd`,
  dlq: (p: number) => `${tag(p)}:dlq`,
  idem: (p: number, commandId: string) => `${tag(p)}:idem:${commandId}`,
  /** The append script's id sequence of the partition ("ms:k", see core/redis/scripts/append-5.lua). */
  idseq: (p: number) => `${tag(p)}:idseq`,
  /** Per-group stream that `dlq redrive` writes to, so a redriven entry reaches only the group that failed it. */
  redrive: (p: number, group: string) => `${tag(p)}:redrive:${group}`,
  lease: (p: number, role: string) => `${tag(p)}:lease:${role}`,
  /** Written by the wait-replica durability barrier (EventStore.confirm) so its WAIT has a write to wait for. */
  durable: (p: number) => `${tag(p)}:durable`,
};

/** Key helpers for one aggregate, given the configured number of partitions. */
export function streamKeys(ref: StreamRef, partitions: number) {
  const p = partitionOf(ref.id, partitions);
  return {
    partition: p,
    stream: keys.stream(p, ref.kind, ref.id),
    meta: keys.meta(p, ref.kind, ref.id),
    log: keys.log(p),
  };
}

/** The `{pN}` hash tag of any of our keys, or undefined when the key has none. */
export function partitionOfKey(key: string): number | undefined {
  const m = /^\{p(\d+)\}/.exec(key);
  return m ? Number(m[1]) : undefined;
}

/** `{p3}:es:conversation:abc` → {kind: "conversation", id: "abc"}. */
export function parseStreamKey(key: string): StreamRef | undefined {
  const m = /^\{p\d+\}:es:([a-z]+):(.+)$/.exec(key);
  if (!m) return undefined;
  return { kind: m[1] as AggregateKind, id: m[2] as string };
}
