import { randomUUID } from "node:crypto";
import { ERROR_STATUS, TributaryError, type ErrorCode } from "../../core/errors.js";
import { keys } from "../../core/keys.js";
import { partitionOf } from "../../core/partition.js";
import type { RedisClient } from "../../core/redis/connection.js";
import { encodeCommand, type CommandRecord, type CommandResult, type Principal } from "./command.js";
import type { ReplyListener } from "./reply-bus.js";

export interface SendOptions {
  /** How long to wait for the decision; undefined = fire and forget. */
  waitMs?: number;
  commandId?: string;
  requestId?: string;
}

export interface Sent {
  commandId: string;
  /** The decision, or undefined when none arrived in time (the command still runs). */
  result: CommandResult | undefined;
}

/**
 * Puts commands on the partition command stream `{pN}:cmd` of their aggregate and, when asked,
 * waits for the decision on this node's reply stream. The command id is the dedupe key (I2): a
 * command re-sent with the same id never appends twice.
 */
export class CommandBus {
  constructor(
    private readonly redis: RedisClient,
    private readonly partitions: number,
    private readonly replies: ReplyListener | undefined,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async send(
    type: string,
    aggregateId: string,
    principal: Principal,
    payload: Record<string, unknown>,
    opts: SendOptions = {},
  ): Promise<Sent> {
    const commandId = opts.commandId ?? randomUUID();
    const wait = opts.waitMs !== undefined && this.replies !== undefined;
    const record: CommandRecord = {
      id: commandId,
      type,
      aggregateId,
      at: this.now().toISOString(),
      principal,
      payload,
      ...(wait && this.replies ? { replyTo: this.replies.key } : {}),
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
    };
    // Register before sending so a fast decision cannot arrive before we listen.
    const pending = wait && this.replies ? this.replies.wait(commandId, opts.waitMs ?? 0) : undefined;
    try {
      await this.redis.xadd(keys.cmd(partitionOf(aggregateId, this.partitions)), "*", "c", encodeCommand(record));
    } catch (e) {
      throw new TributaryError("UNAVAILABLE", "command stream unavailable", { cause: e, retryAfter: 1 });
    }
    return { commandId, result: pending ? await pending : undefined };
  }
}

/** Turn a failed decision into the error the edge answers with. */
export function resultError(r: Extract<CommandResult, { ok: false }>): TributaryError {
  const code = (Object.hasOwn(ERROR_STATUS, r.error.code) ? r.error.code : "INTERNAL") as ErrorCode;
  return new TributaryError(code, r.error.message, {
    ...(r.error.details === undefined ? {} : { details: r.error.details }),
    ...(r.error.retryAfter === undefined ? {} : { retryAfter: r.error.retryAfter }),
  });
}
