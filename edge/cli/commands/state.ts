import type { Command } from "commander";
import { z } from "zod";
import { history } from "../../../core/audit/history.js";
import { errorMessage } from "../../../core/errors.js";
import type { StreamRef } from "../../../core/keys.js";
import { foldState } from "../../../actors/fold-state.js";
import { withContext } from "../context.js";
import { CheckFailed, UsageError } from "../exit-codes.js";
import { historySources } from "../history.js";
import { AggregateId, parseArgs } from "../stream-args.js";

/**
 * `tributary state <id> [--at-version N] [--at TIME] [--kind K]`: the actor's state as it was after
 * event N (or the last event at or before TIME; default: now), folded through the same pure decider
 * the runtime uses — so this is exactly what the actor believed then (DESIGN §Actors).
 */
const StateArgs = z.object({
  id: AggregateId,
  atVersion: z.coerce.number().int().min(0).optional(),
  at: z.iso.datetime({ offset: true }).optional(),
  kind: z.enum(["conversation", "session", "ledger"]),
});

export function registerState(program: Command): void {
  program
    .command("state")
    .description("print an actor's state after event N (default: now), folded through its decider")
    .argument("<id>", "the aggregate's id (a conversation id unless --kind says otherwise)")
    .option("--at-version <n>", "fold only the first N events")
    .option("--at <time>", "fold only events at or before this ISO-8601 instant")
    .option("--kind <kind>", "conversation, session or ledger", "conversation")
    .action(async (id: string, opts: { atVersion?: string; at?: string; kind: string }) => {
      const args = parseArgs(StateArgs, { id, ...opts });
      await withContext(async (ctx) => {
        const sources = await historySources(ctx);
        const ref: StreamRef = { kind: args.kind, id: args.id };
        const head = await sources.redis.head(ref);
        if (head.version === 0) throw new CheckFailed(`${args.kind} ${args.id} not found`);
        if (args.atVersion !== undefined && args.atVersion > head.version) {
          throw new UsageError(`--at-version ${args.atVersion} is past the stream's last version ${head.version}`);
        }
        const limit: { atVersion?: number; at?: string } = {};
        if (args.atVersion !== undefined) limit.atVersion = args.atVersion;
        if (args.at !== undefined) limit.at = args.at;
        try {
          const folded = await foldState(history(sources, ref, {}), ref, limit);
          process.stdout.write(`${JSON.stringify(folded, null, 2)}\n`);
        } catch (e) {
          throw new CheckFailed(`${args.kind} ${args.id}: ${errorMessage(e)}`);
        }
      });
    });
}
