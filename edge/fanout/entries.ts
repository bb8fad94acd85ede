import { decodeEvent } from "../../core/codec.js";
import type { Envelope } from "../../core/envelope.js";
import { DecodeError } from "../../core/errors.js";

/**
 * Raw stream entries (from xreadBuffer / xrangeBuffer) → envelopes. The aggregate stream entry
 * format is fixed: field `e` holds the msgpack StoredEvent, `h` its chain hash (not needed here).
 */
export type RawEntry = [id: Buffer, fields: Buffer[]];

/** "e" — compared as one byte rather than with Buffer.equals (a native call per field, per event). */
const E = 0x65;

/** Decode one entry; throws DecodeError when the entry is not a stored event. */
export function entryToEnvelope(conversationId: string, entry: RawEntry): Envelope {
  const [idBuf, fields] = entry;
  const offset = idBuf.toString("latin1");
  let bytes: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i] as Buffer;
    if (f.length === 1 && f[0] === E) {
      bytes = fields[i + 1];
      break;
    }
  }
  if (bytes === undefined) throw new DecodeError(`stream entry ${offset} of ${conversationId} has no "e" field`);
  const ev = decodeEvent(bytes);
  return { conversationId, offset, version: ev.version, type: ev.type, at: ev.at, data: ev.data };
}
