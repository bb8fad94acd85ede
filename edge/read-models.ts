import { sql } from "kysely";
import type { Db } from "../projections/db.js";
import { getConversation, listConversations, spend } from "../projections/queries.js";
import type { ConversationDetail, MessageView, ReadinessCheck, ReadModels } from "./deps.js";

/**
 * The edge's `ReadModels` over the projections' queries (projections/queries.ts). Only shapes are
 * adapted here; tenancy is decided by the caller (routes pass the token's tenant, never the request's).
 */
export function createReadModels(db: Db): ReadModels {
  return {
    async listConversations(q) {
      const page = await listConversations(db, {
        tenantId: q.tenantId,
        ...(q.ownerId === undefined ? {} : { userId: q.ownerId }),
        limit: q.limit,
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
      });
      return { items: page.items.map((i) => ({ ...i })), nextCursor: page.nextCursor };
    },
    async getConversation(q) {
      const c = await getConversation(db, q.conversationId, q.tenantId);
      if (!c) return undefined;
      const detail: ConversationDetail = {
        id: c.id,
        title: c.title,
        model: c.model,
        ownerId: c.ownerId,
        status: c.status,
        createdAt: c.createdAt,
        updatedAt: c.updatedAt,
        messages: c.messages.map((m) => m as MessageView),
      };
      return detail;
    },
    async spend(q) {
      return spend(db, { tenantId: q.tenantId, from: q.from, to: q.to, groupBy: q.groupBy }) as ReturnType<ReadModels["spend"]>;
    },
  };
}

export function postgresCheck(db: Db): ReadinessCheck {
  return {
    name: "postgres",
    async check() {
      await sql`select 1`.execute(db);
    },
  };
}
