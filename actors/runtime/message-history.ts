import type { RecordedEvent } from "../../core/envelope.js";
import { textDigest } from "../digest.js";

/** A message as the log recorded it: what a repeat of it is answered with (CONTRACT §3). */
export interface LoggedMessage {
  messageId: string;
  replyId: string;
  /** textDigest of its text: a repeat with another text is a CONFLICT. */
  digest: string;
  /** Offset of its `message.received`: the `offset` of the 201/200 body. */
  offset: string;
}

/**
 * What a conversation's log says about a new message's ids, for the rare post whose ids the state
 * cannot vouch for (repeat-index.ts `needsHistory`: a repeat older than the messages kept in full,
 * or a fingerprint collision): the message first accepted with its clientMessageId, if any, and
 * whether its messageId or replyId was already used. Reads the whole log (archive included): it
 * is the truth the bounded state stands in for.
 */
export async function findInLog(
  events: AsyncIterable<RecordedEvent>,
  ids: { clientMessageId: string; messageId: string; replyId: string },
): Promise<{ message?: LoggedMessage; idsUsed: boolean }> {
  let message: LoggedMessage | undefined;
  let idsUsed = false;
  const used = (id: unknown) => id === ids.messageId || id === ids.replyId;
  for await (const e of events) {
    const d = e.data as { clientMessageId?: string; messageId?: string; text?: string };
    if (e.type === "message.received") {
      if (used(d.messageId)) idsUsed = true;
      if (message === undefined && d.clientMessageId === ids.clientMessageId) {
        message = { messageId: String(d.messageId), replyId: "", digest: textDigest(String(d.text ?? "")), offset: e.offset };
      }
    } else if (e.type === "assistant.started") {
      if (used(d.messageId)) idsUsed = true;
      if (message !== undefined && message.replyId === "" && d.clientMessageId === ids.clientMessageId) message.replyId = String(d.messageId);
    }
  }
  return message === undefined ? { idsUsed } : { message, idsUsed };
}
