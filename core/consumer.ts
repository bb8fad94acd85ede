/**
 * The consumer-group runtime's narrow interface (shaped like centrifugo's redisqueue): the runtime
 * owns reading, acknowledging, retrying and dead-lettering; a handler only does its effect.
 */
export interface StreamMessage {
  /** The stream the entry was read from (a partition log, command stream or redrive stream). */
  stream: string;
  id: string;
  /** Raw field values; payloads are msgpack, so they stay Buffers. */
  fields: Record<string, Buffer>;
  /** How many times this entry has been delivered to the group (1 on first delivery). */
  deliveries: number;
}

/**
 * Handles a batch. Resolve when every message's effect is durable; the runtime then acknowledges
 * all of them. Throwing fails the whole batch; the runtime then retries each message on its own so
 * a poison message is isolated. To fail only some messages, return their ids with an error.
 */
export type BatchHandler = (batch: StreamMessage[]) => Promise<void | Map<string, unknown>>;

export interface ConsumerCounters {
  processed: number;
  retried: number;
  deadLettered: number;
  /** Entries not yet delivered to the group, summed over its streams (XINFO GROUPS lag). */
  lag: number;
}

/** A dead letter as stored in `{pN}:dlq`. */
export interface DeadLetter {
  id: string;
  /** Stream and group the message failed in. */
  origin: string;
  group: string;
  originId: string;
  error: string;
  deliveries: number;
  at: string;
  fields: Record<string, Buffer>;
}
