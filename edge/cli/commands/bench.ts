import type { Command } from "commander";
import { parseBenchOptions } from "../../../bench/chat/options.js";
import { runChatBench } from "../../../bench/chat/run.js";
import { toMarkdown } from "../../../bench/report/markdown.js";
import { UsageError } from "../exit-codes.js";

/**
 * `tributary bench`: the load benchmark as a product feature (DESIGN §Bench, issue 6 item 4). Drives
 * a deployment on loopback — or one it spawns with `--spawn`, isolated by a temporary DATA_DIR and a
 * random REDIS_KEY_PREFIX — and writes report.json, report.md and report.svg to `--out`.
 */
interface BenchFlags {
  url: string;
  spawn?: boolean;
  token?: string;
  tokenSecret?: string;
  clients: string;
  conversations: string;
  transport: string;
  rate: string;
  duration: string;
  workers: string;
  out: string;
  baseline: string;
  maxTokens?: string;
  simTokensPerSec: string;
  simMaxTokens: string;
  serverPid?: string;
  redisUrl?: string;
}

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description("load benchmark: C clients over SSE / Socket.IO on K conversations, at a message rate, for a duration (loopback only)")
    .option("--url <url>", "the deployment to drive (loopback only)", "http://127.0.0.1:8080")
    .option("--spawn", "start a private `tributary start` (temp DATA_DIR, random REDIS_KEY_PREFIX) and drive that")
    .option("--token <jwt>", "one token for every client (else tokens are signed with --token-secret)")
    .option("--token-secret <secret>", "HS256 secret to sign per-conversation tokens [AUTH_JWT_SECRET]")
    .option("--clients <n>", "concurrent clients (≤ 10000)", "100")
    .option("--conversations <n>", "conversations the clients spread over", "10")
    .option("--transport <t>", "sse | socketio | mix", "mix")
    .option("--rate <n>", "messages/s over all conversations", "5")
    .option("--duration <s>", "seconds of load (≤ 600)", "10")
    .option("--workers <n>", "client worker processes", "2")
    .option("--out <dir>", "where report.json, report.md and report.svg go", "bench-results")
    .option("--baseline <b>", "none | socketio (same workload against socket.io + redis-streams-adapter)", "none")
    .option("--max-tokens <n>", "maxTokens of each message")
    .option("--sim-tokens-per-sec <n>", "SIM_TOKENS_PER_SEC of spawned servers", "100")
    .option("--sim-max-tokens <n>", "SIM_MAX_TOKENS of spawned servers", "20")
    .option("--server-pid <pid>", "pid of a local server to sample CPU/RSS from (automatic with --spawn)")
    .option("--redis-url <url>", "Redis for spawned servers and clean-up [REDIS_URL]")
    .action(async (f: BenchFlags) => {
      let options;
      try {
        options = parseBenchOptions({
          url: f.url,
          spawn: f.spawn === true,
          token: f.token,
          tokenSecret: f.tokenSecret ?? process.env.AUTH_JWT_SECRET,
          clients: f.clients,
          conversations: f.conversations,
          transport: f.transport,
          rate: f.rate,
          duration: f.duration,
          workers: f.workers,
          out: f.out,
          baseline: f.baseline,
          maxTokens: f.maxTokens,
          simTokensPerSec: f.simTokensPerSec,
          simMaxTokens: f.simMaxTokens,
          serverPid: f.serverPid,
          redisUrl: f.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        });
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      const { report, paths } = await runChatBench(options);
      process.stdout.write(toMarkdown(report));
      process.stdout.write(`\nwrote ${paths.json}, ${paths.md}, ${paths.svg}\n`);
    });
}
