import { decodeEvent } from "../core/codec.js";
import { TributaryError } from "../core/errors.js";
import { ConversationEvents } from "../core/events/conversation.js";
import { keys } from "../core/keys.js";
import { partitionOf } from "../core/partition.js";
import type { RecordedEvent } from "../core/envelope.js";
import type { ReadOptions } from "../core/event-store.js";
import type { StreamRef } from "../core/keys.js";
import type { RedisClient } from "../core/redis/connection.js";
import { seesWholeTenant, type Principal } from "./auth/principal.js";

/**
 * I9: every read and command is checked against the token's tenant and user. A conversation's owner
 * and tenant never change, and they are written by its first event (`conversation.created`), so the
 * check reads that one entry straight from the aggregate stream — no read model lag, no projection
 * needed — and caches the answer.
 *
 * A foreign or unknown id answers 404 NOT_FOUND, never 403: a 403 would confirm that the id exists.
 */
export interface ConversationOwner {
  conversationId: string;
  tenantId: string;
  ownerId: string;
  projectId: string | null;
  /** From `conversation.created`: enough to answer for a conversation the read model has not caught up with. */
  title: string;
  model: string;
  createdAt: string;
}

export interface AccessChecker {
  /** The owner record when `principal` may see the conversation; TributaryError NOT_FOUND otherwise. */
  check(conversationId: string, principal: Principal): Promise<ConversationOwner>;
  /** The owner record without an access decision (undefined when the conversation does not exist). */
  owner(conversationId: string): Promise<ConversationOwner | undefined>;
}

export interface AccessCheckerOptions {
  /** Owners kept in memory; they never change, so the only cost of a hit is staleness-free. */
  cacheSize?: number;
  /**
   * Where to look when the stream's first entry is gone (trimmed after archiving): the archive or a
   * read model. Without it a fully archived conversation answers 404 from here.
   */
  fallback?: (conversationId: string) => Promise<ConversationOwner | undefined>;
}

/** Conversation ids become part of Redis keys: anything else is unknown by construction. */
const CONVERSATION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function mayAccess(owner: ConversationOwner, principal: Principal): boolean {
  if (owner.tenantId !== principal.tenantId) return false;
  return owner.ownerId === principal.userId || seesWholeTenant(principal);
}

export function notFound(conversationId: string): TributaryError {
  return new TributaryError("NOT_FOUND", `conversation ${conversationId} not found`);
}

export function createAccessChecker(redis: RedisClient, partitions: number, opts: AccessCheckerOptions = {}): AccessChecker {
  const max = opts.cacheSize ?? 10_000;
  // Map iteration order is insertion order: re-inserting on hit makes it an LRU.
  const cache = new Map<string, ConversationOwner>();
  // Concurrent first requests for one id share one Redis round trip.
  const inflight = new Map<string, Promise<ConversationOwner | undefined>>();

  async function load(conversationId: string): Promise<ConversationOwner | undefined> {
    const stream = keys.stream(partitionOf(conversationId, partitions), "conversation", conversationId);
    const entries = await redis.xrangeBuffer(stream, "-", "+", "COUNT", 1);
    const first = entries[0];
    if (first) {
      const fields = first[1];
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i]?.toString() !== "e") continue;
        const value = fields[i + 1];
        if (!value) break;
        const rec = decodeEvent(value);
        if (rec.type !== "conversation.created") break;
        const data = ConversationEvents["conversation.created"].parse(rec.data);
        return {
          conversationId,
          tenantId: data.tenantId,
          ownerId: data.ownerId,
          projectId: data.projectId,
          title: data.title,
          model: data.model,
          createdAt: rec.at,
        };
      }
    }
    return opts.fallback ? opts.fallback(conversationId) : undefined;
  }

  async function owner(conversationId: string): Promise<ConversationOwner | undefined> {
    if (!CONVERSATION_ID.test(conversationId)) return undefined;
    const hit = cache.get(conversationId);
    if (hit) {
      cache.delete(conversationId);
      cache.set(conversationId, hit);
      return hit;
    }
    let p = inflight.get(conversationId);
    if (!p) {
      p = load(conversationId).finally(() => inflight.delete(conversationId));
      inflight.set(conversationId, p);
    }
    const found = await p;
    // Unknown ids are not cached: the conversation may be created a moment later.
    if (found) {
      cache.set(conversationId, found);
      if (cache.size > max) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
    }
    return found;
  }

  return {
    owner,
    async check(conversationId, principal) {
      const o = await owner(conversationId);
      if (!o || !mayAccess(o, principal)) throw notFound(conversationId);
      return o;
    },
  };
}

/**
 * Commands need more than sight: an auditor may read a conversation but not speak in it. Called
 * after `check`, so the caller already may see the conversation and a 403 reveals nothing new.
 */
export function assertMayCommand(owner: ConversationOwner, principal: Principal, opts: { allowAdmin: boolean }): void {
  if (owner.ownerId === principal.userId && owner.tenantId === principal.tenantId) return;
  if (opts.allowAdmin && owner.tenantId === principal.tenantId && principal.roles.includes("admin")) return;
  throw new TributaryError("FORBIDDEN", "only the conversation's owner may do this");
}

/**
 * An `AccessCheckerOptions.fallback` over any reader that spans the archive (core's archived event
 * reader): the first event of the stream, wherever it lives now.
 */
export function ownerFromFirstEvent(
  reader: { read(ref: StreamRef, opts?: ReadOptions): Promise<RecordedEvent[]> },
): (conversationId: string) => Promise<ConversationOwner | undefined> {
  return async (conversationId) => {
    const [first] = await reader.read({ kind: "conversation", id: conversationId }, { limit: 1 });
    if (!first || first.type !== "conversation.created") return undefined;
    const data = ConversationEvents["conversation.created"].parse(first.data);
    return {
      conversationId,
      tenantId: data.tenantId,
      ownerId: data.ownerId,
      projectId: data.projectId,
      title: data.title,
      model: data.model,
      createdAt: first.at,
    };
  };
}
