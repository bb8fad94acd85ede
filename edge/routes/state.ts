import { z } from "zod";
import { history } from "../../core/audit/history.js";
import { TributaryError, errorMessage } from "../../core/errors.js";
import type { StreamRef } from "../../core/keys.js";
import { createRedisEntrySource } from "../../core/redis/entry-source.js";
import { foldState, type FoldLimit } from "../../actors/fold-state.js";
import type { EdgeDeps } from "../deps.js";
import { validate } from "../http/body.js";
import { authenticate, mount } from "../http/route.js";
import type { TemplatedApp } from "../uws.js";
import { queryObject } from "./schemas.js";

/**
 * `GET /v1/conversations/:id/state?atVersion=N` or `?at=ISO` (issue 6 item 2): the conversation
 * actor's state after event N (or the last event at or before the instant; default: now), folded over
 * the archive + Redis through the same decider as `tributary state`. Readable by the owner and by the
 * tenant's auditors and admins; a foreign or unknown id is 404 (I9), like every conversation route.
 */
export const StateQuery = z
  .strictObject({
    atVersion: z
      .string()
      .regex(/^\d{1,15}$/, "atVersion must be a non-negative integer")
      .transform(Number)
      .optional(),
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((q) => q.atVersion === undefined || q.at === undefined, { message: "give atVersion or at, not both", path: ["at"] });

export function mountStateRoute(app: TemplatedApp, deps: EdgeDeps): void {
  // Without the archive-spanning reader an edge still answers for streams that Redis holds whole.
  const entries = deps.operations?.history ?? createRedisEntrySource(deps.redis, deps.config.PARTITIONS);
  mount(app, deps, {
    method: "get",
    pattern: "/v1/conversations/:id/state",
    async handler(ctx) {
      const principal = await authenticate(ctx, deps.auth);
      const q = validate(StateQuery, queryObject(ctx.searchParams), "query");
      deps.gateway.breaker.assertUp("redis");
      const owner = await deps.access.check(ctx.param(0), principal);
      const ref: StreamRef = { kind: "conversation", id: owner.conversationId };
      const limit: FoldLimit = {};
      if (q.atVersion !== undefined) limit.atVersion = q.atVersion;
      if (q.at !== undefined) limit.at = q.at;
      const folded = await foldState(history({ live: entries }, ref), ref, limit).catch((e: unknown) => {
        // A stored event the decider cannot fold is our integrity problem, never the caller's 400.
        if (e instanceof TributaryError && e.status >= 500) throw e;
        throw new TributaryError("INTERNAL", `conversation ${ref.id} cannot be folded: ${errorMessage(e)}`, { cause: e });
      });
      // A version the stream never reached is a client mistake, not "the state now".
      if (q.atVersion !== undefined && folded.version < q.atVersion) {
        throw new TributaryError("VALIDATION_FAILED", `atVersion ${q.atVersion} is past the conversation's last version ${folded.version}`, {
          details: [{ path: ["atVersion"], message: `the conversation's last version is ${folded.version}` }],
        });
      }
      ctx.json(200, folded);
    },
  });
}
