import { randomUUID } from "node:crypto";
import type { ConversationDetail, EdgeDeps } from "../deps.js";
import type { ConversationOwner } from "../access.js";
import { seesWholeTenant } from "../auth/principal.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { CreateConversationBody, IdempotencyKey, ListConversationsQuery, queryObject } from "./schemas.js";

/** `POST /v1/conversations`, `GET /v1/conversations`, `GET /v1/conversations/:id`. */
export function mountConversationRoutes(app: TemplatedApp, deps: EdgeDeps): void {
  const maxBytes = deps.config.MAX_BODY_BYTES;

  mount(app, deps, {
    method: "post",
    pattern: "/v1/conversations",
    body: { maxBytes, optional: true },
    async handler(ctx, body) {
      const principal = await authenticate(ctx, deps.auth);
      const input = validate(CreateConversationBody, (await body) ?? {});
      const keyHeader = ctx.header("idempotency-key");
      const idempotencyKey = keyHeader === undefined ? undefined : validate(IdempotencyKey, keyHeader, "Idempotency-Key header");
      // The new id is not known yet: gate on a random one so the backlog looked at is a fair sample.
      await deps.gateway.admitCommand(idempotencyKey ?? randomUUID());
      const stop = deps.metrics.commandLatency.startTimer({ command: "createConversation" });
      try {
        const created = await deps.commands.createConversation({
          tenantId: principal.tenantId,
          userId: principal.userId,
          projectId: principal.projectId,
          title: input.title,
          model: input.model,
          idempotencyKey,
        });
        stop({ outcome: "ok" });
        ctx.json(201, created);
      } catch (e) {
        stop({ outcome: "error" });
        throw e;
      }
    },
  });

  mount(app, deps, {
    method: "get",
    pattern: "/v1/conversations",
    async handler(ctx) {
      const principal = await authenticate(ctx, deps.auth);
      const q = validate(ListConversationsQuery, queryObject(ctx.searchParams), "query");
      deps.gateway.breaker.assertUp("postgres");
      const page = await deps.readModels.listConversations({
        tenantId: principal.tenantId,
        ownerId: seesWholeTenant(principal) ? undefined : principal.userId,
        limit: q.limit,
        cursor: q.cursor,
      });
      ctx.json(200, { items: page.items, nextCursor: page.nextCursor ?? null });
    },
  });

  mount(app, deps, {
    method: "get",
    pattern: "/v1/conversations/:id",
    async handler(ctx) {
      const principal = await authenticate(ctx, deps.auth);
      deps.gateway.breaker.assertUp("redis");
      const owner = await deps.access.check(ctx.param(0), principal);
      deps.gateway.breaker.assertUp("postgres");
      const detail = await deps.readModels.getConversation({ tenantId: principal.tenantId, conversationId: owner.conversationId });
      ctx.json(200, detail ?? notYetProjected(owner));
    },
  });
}

/**
 * The conversation exists (its first event is in the stream) but the read model has not caught up:
 * answer what the first event says rather than a 404 that would contradict the 201 just given.
 */
function notYetProjected(o: ConversationOwner): ConversationDetail {
  return {
    id: o.conversationId,
    title: o.title,
    model: o.model,
    ownerId: o.ownerId,
    status: "idle",
    createdAt: o.createdAt,
    updatedAt: o.createdAt,
    messages: [],
  };
}
