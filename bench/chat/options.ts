import { z } from "zod";
import { requireLoopbackUrl } from "../lib/loopback.js";

/**
 * `tributary bench` options, validated once (zod at the boundary). Every bound here exists so that a
 * typo cannot turn the bench into an unbounded load generator: loopback only, capped clients,
 * rate and duration.
 */
export const LIMITS = { clients: 10_000, conversations: 5_000, rate: 2_000, seconds: 600, workers: 8 } as const;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const BenchOptionsSchema = z
  .object({
    url: z
      .string()
      .default("http://127.0.0.1:8080")
      .superRefine((v, ctx) => {
        try {
          requireLoopbackUrl(v);
        } catch (e) {
          ctx.addIssue({ code: "custom", message: e instanceof Error ? e.message : String(e) });
        }
      }),
    spawn: z.boolean().default(false),
    token: z.string().min(10).optional(),
    tokenSecret: z.string().min(16).optional(),
    clients: int(1, LIMITS.clients).default(100),
    conversations: int(1, LIMITS.conversations).default(10),
    transport: z.enum(["sse", "socketio", "mix"]).default("mix"),
    /** Messages per second over all conversations. */
    rate: z.coerce.number().positive().max(LIMITS.rate).default(5),
    duration: int(1, LIMITS.seconds).default(10),
    workers: int(1, LIMITS.workers).default(2),
    out: z.string().min(1).default("bench-results"),
    baseline: z.enum(["none", "socketio"]).default("none"),
    maxTokens: int(1, 4096).optional(),
    simTokensPerSec: z.coerce.number().positive().max(100_000).default(100),
    simMaxTokens: int(1, 10_000).default(20),
    serverPid: int(1, 4_194_304).optional(),
    redisUrl: z.string().regex(/^redis:\/\//).default("redis://127.0.0.1:6379"),
  })
  .superRefine((o, ctx) => {
    if (o.conversations > o.clients) ctx.addIssue({ code: "custom", path: ["conversations"], message: `must be ≤ --clients (${o.clients})` });
    if (!o.spawn && !o.token && !o.tokenSecret) {
      ctx.addIssue({ code: "custom", path: ["token"], message: "without --spawn, give --token or --token-secret (or AUTH_JWT_SECRET)" });
    }
    const host = /^redis:\/\/(?:[^@/]*@)?([^:/]+)/.exec(o.redisUrl)?.[1] ?? "";
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) ctx.addIssue({ code: "custom", path: ["redisUrl"], message: `must be a loopback Redis, got ${host}` });
  });

export type BenchOptions = z.infer<typeof BenchOptionsSchema>;

/** Parses options; throws Error with one line naming the flag. */
export function parseBenchOptions(input: Record<string, unknown>): BenchOptions {
  const r = BenchOptionsSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const flag = String(issue?.path[0] ?? "").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  throw new Error(`${flag ? `--${flag}: ` : ""}${issue?.message ?? "invalid"}`);
}
