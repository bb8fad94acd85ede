import { assertMayCommand } from "../access.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { PostMessageBody } from "./schemas.js";

/**
 * `POST /v1/conversations/:id/messages` (CONTRACT §3). Order: who (401), may they see it (404),
 * is the body right (400), may the system take it now (503 / 429), then the actor decides
 * (201 / 200 repeat / 202 pending / 409 / 429 quota). Invalid requests never use up rate budget.
 */
export function mountMessageRoutes(app: TemplatedApp, deps: EdgeDeps): void {
  mount(app, deps, {
    method: "post",
    pattern: "/v1/conversations/:id/messages",
    body: { maxBytes: deps.config.MAX_BODY_BYTES },
    async handler(ctx, body) {
      const principal = await authenticate(ctx, deps.auth);
      deps.gateway.breaker.assertUp("redis");
      const owner = await deps.access.check(ctx.param(0), principal);
      assertMayCommand(owner, principal, { allowAdmin: false });
      const input = validate(PostMessageBody, await body);
      await deps.gateway.admitMessage(principal, owner.conversationId);
      const stop = deps.metrics.commandLatency.startTimer({ command: "postMessage" });
      try {
        const result = await deps.commands.postMessage({
          conversationId: owner.conversationId,
          tenantId: principal.tenantId,
          userId: principal.userId,
          tier: principal.tier,
          text: input.text,
          clientMessageId: input.clientMessageId,
          maxTokens: input.maxTokens,
          requestId: ctx.requestId,
        });
        stop({ outcome: result.kind });
        if (result.kind === "pending") ctx.json(202, result.body);
        else ctx.json(result.status, result.body);
      } catch (e) {
        stop({ outcome: "rejected" });
        throw e;
      }
    },
  });
}
