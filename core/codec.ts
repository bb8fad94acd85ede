import { Packr } from "msgpackr";
import { DecodeError } from "./errors.js";
import { CURRENT_SCHEMA, type StoredEvent } from "./envelope.js";

/**
 * msgpackr codec for stored events and commands. Records/structures are off: every entry must be
 * decodable on its own (consumers, archive segments and audit read entries in isolation), and the
 * encoded bytes are what the hash chain covers.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" });

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeRaw(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (e) {
    throw new DecodeError(`not valid msgpack (${bytes.length} bytes)`, e);
  }
}

/** Upcasters turn a record of schema N into schema N+1. Registered once at start-up. */
export type Upcaster = (record: StoredEvent) => StoredEvent;
const upcasters = new Map<number, Upcaster>();

export function registerUpcaster(fromSchema: number, up: Upcaster): void {
  if (fromSchema >= CURRENT_SCHEMA) throw new RangeError(`upcaster from ${fromSchema} must be below ${CURRENT_SCHEMA}`);
  upcasters.set(fromSchema, up);
}

function isStoredEvent(v: unknown): v is StoredEvent {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.s === "number" && typeof r.type === "string" && typeof r.version === "number" && typeof r.at === "string";
}

export function encodeEvent(e: StoredEvent): Buffer {
  return encode(e);
}

/** Decode and upcast; a record from the future or of the wrong shape is a permanent DecodeError. */
export function decodeEvent(bytes: Uint8Array): StoredEvent {
  const raw = decodeRaw(bytes);
  if (!isStoredEvent(raw)) throw new DecodeError("entry is not a stored event record");
  let rec: StoredEvent = raw;
  if (rec.s > CURRENT_SCHEMA) throw new DecodeError(`unknown schema version ${rec.s} (this build knows ≤ ${CURRENT_SCHEMA})`);
  while (rec.s < CURRENT_SCHEMA) {
    const up = upcasters.get(rec.s);
    if (!up) throw new DecodeError(`no upcaster from schema version ${rec.s}`);
    rec = up(rec);
  }
  return rec;
}
