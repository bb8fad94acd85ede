import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../edge/cli/main.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { freePort, privateRedis, type PrivateRedis } from "../support/private-services.js";
import { testAuthenticator, TEST_JWT_SECRET } from "../support/tokens.js";

/**
 * Issue 7 §5: fast-check over the CLI's arguments (CONTRACT §1: exit 0 ok, 1 a check failed, 2 usage
 * error, 3 a dependency unreachable; "every command validates its arguments and prints a one-line
 * reason on bad input").
 *
 * Random argument vectors for every `tributary` subcommand — made of the command's own options and
 * arguments, other commands' options, plausible values (valid and not) and arbitrary strings — run
 * in-process through `main()` (the same function bin.mjs calls) with stdout/stderr captured. Whatever
 * the vector: an exit code of the contract, never a stack trace or an internal error name; a usage
 * error (2) is exactly one line that names the argument (or option, or subcommand) it is about; any
 * other failure is one `tributary: …` line.
 *
 * Three environments:
 * - one-shot commands against a real private Redis and a fresh Postgres database: valid vectors do
 *   their normal job (0, or 1 for "not found" on an empty system);
 * - the same commands with Redis and Postgres on closed loopback ports: valid vectors exit 3;
 * - the long-running roles (edge, worker, projector, start) and bench with REDIS_URL unusable, so a
 *   vector that passes argument validation stops at configuration (exit 2, naming REDIS_URL) instead
 *   of starting a server.
 */

interface CommandSpec {
  path: string[];
  /** Options taking a value, with values to try (valid and invalid). */
  options: Record<string, string[]>;
  flags: string[];
  /** Positional values to try. */
  args: string[];
}

const IDS = ["c-1", "conv_1.a:b-c", "x".repeat(128), "x".repeat(129), "bad id", "c/1", "ü"];
const OFFSETS = ["0", "1732212345678-0", "1732212345678", "18446744073709551615-18446744073709551615", "-1", "1-", "abc", "2026-11-22T00:00:00Z", "2026-11-22T00:00:00+02:00", "2026-13-45T99:00:00Z", "1970-01-01T00:00:00Z"];
const NUMBERS = ["0", "1", "3", "100", "-1", "1.5", "1e3", "1e309", "NaN", "Infinity", "0x10", "9007199254740993", ""];
const DATES = ["2026-11-22", "2026-02-30", "2026-11-22T00:00:00Z", "22/11/2026", "", "0000-00-00", "9999-12-31"];
const DURATIONS = ["30s", "15m", "1h", "7d", "0", "1ms", "500ms", "-1h", "1y", "99999999999999999999d", "9007199254740993s", "1.5h", ""];

const COMMANDS: CommandSpec[] = [
  { path: ["replay"], options: { "--from": OFFSETS, "--to": OFFSETS, "--format": ["ndjson", "text", "json", ""] }, flags: [], args: IDS },
  { path: ["state"], options: { "--at-version": NUMBERS, "--at": OFFSETS, "--kind": ["conversation", "session", "ledger", "user", ""] }, flags: [], args: IDS },
  { path: ["audit", "verify"], options: { "--format": ["text", "json", "xml"] }, flags: ["--all", "--progress", "--no-progress"], args: IDS },
  { path: ["dlq", "list"], options: { "--group": ["actors", "projector", "bad group", ""], "--partition": NUMBERS, "--limit": NUMBERS, "--format": ["text", "json", "csv"] }, flags: [], args: [] },
  { path: ["dlq", "show"], options: {}, flags: [], args: ["0/1732212345678-0", "3/1-1", "9/1-0", "-1/1-0", "0/", "0/abc", "x", ""] },
  { path: ["dlq", "redrive"], options: {}, flags: ["--all"], args: ["0/1732212345678-0", "4/1-0", "0/abc", ""] },
  { path: ["dlq", "purge"], options: {}, flags: ["--all"], args: ["1/1732212345678-0", "0/1-0-0", "nope"] },
  { path: ["spend"], options: { "--from": DATES, "--to": DATES, "--group-by": ["user", "model", "day", "project", "tenant", ""], "--tenant": ["t1", "", "x".repeat(300)], "--user": ["u1", ""], "--format": ["table", "json", "csv", "xml"] }, flags: [], args: [] },
  { path: ["reconcile"], options: { "--tenant": ["t1", "", "x".repeat(300)] }, flags: [], args: [] },
  { path: ["projections", "status"], options: { "--format": ["table", "json", "yaml"] }, flags: [], args: [] },
  { path: ["projections", "rebuild"], options: {}, flags: [], args: ["all", "conversations", "messages", "nope", ""] },
  { path: ["archive"], options: { "--older-than": DURATIONS, "--format": ["text", "json", "csv"] }, flags: ["--trim-log", "--gc", "--recover-index"], args: [] },
  { path: ["migrate"], options: {}, flags: [], args: [] },
  { path: ["token"], options: { "--sub": ["u1", "", " ", "x".repeat(300)], "--tenant": ["t1", "", "x".repeat(300)], "--project": ["p1", ""], "--tier": ["anonymous", "registered", "privileged", "root", ""], "--roles": ["admin", "admin,auditor", ",,", "god", ""], "--ttl": DURATIONS }, flags: [], args: [] },
];

const ROLES: CommandSpec[] = [
  { path: ["edge"], options: {}, flags: [], args: [] },
  { path: ["worker"], options: {}, flags: [], args: [] },
  { path: ["projector"], options: {}, flags: ["--all-partitions"], args: [] },
  { path: ["start"], options: {}, flags: [], args: [] },
  {
    path: ["bench"],
    options: {
      "--url": ["http://127.0.0.1:1", "http://example.com", "not a url", ""],
      "--token": ["short", "x".repeat(40)],
      "--token-secret": ["short", "x".repeat(40)],
      "--clients": NUMBERS,
      "--conversations": NUMBERS,
      "--transport": ["sse", "socketio", "mix", "ws"],
      "--rate": NUMBERS,
      "--duration": NUMBERS,
      "--workers": NUMBERS,
      "--baseline": ["none", "socketio", "x"],
      "--max-tokens": NUMBERS,
      "--server-pid": NUMBERS,
      "--redis-url": ["http://127.0.0.1", "", "x"],
    },
    flags: ["--spawn"],
    args: [],
  },
];

const ALL = [...COMMANDS, ...ROLES];
const ANY_OPTION = [...new Set(ALL.flatMap((c) => [...Object.keys(c.options), ...c.flags])), "--help", "-h", "--version", "-V", "--", "-", "-x", "--no-such-option"];
const ANY_NAME = [...new Set(ALL.map((c) => c.path[0]!)), "list", "show", "verify", "status", "rebuild", "nope", "help"];

/** Real argv never holds NUL; everything else may arrive. */
const junk = fc.string({ maxLength: 24, unit: "binary" }).filter((s) => !s.includes("\u0000"));

/** An argument vector for `spec`: its path (sometimes cut short or wrong) and a random mix of pieces. */
function vector(spec: CommandSpec): fc.Arbitrary<string[]> {
  const own = [...Object.keys(spec.options), ...spec.flags];
  const none = fc.constant([] as string[]);
  const optNames = Object.keys(spec.options);
  const withValue = optNames.length ? fc.constantFrom(...optNames).chain((o) => fc.constantFrom(...(spec.options[o] ?? [""])).map((v) => [o, v])) : none;
  const piece: fc.Arbitrary<string[]> = fc.oneof(
    { weight: 6, arbitrary: withValue },
    { weight: 3, arbitrary: own.length ? fc.constantFrom(...own).map((o) => [o]) : none },
    { weight: 2, arbitrary: withValue.map((ov) => (ov.length === 2 ? [`${ov[0]}=${ov[1]}`] : ov)) },
    { weight: 3, arbitrary: spec.args.length ? fc.constantFrom(...spec.args).map((a) => [a]) : none },
    { weight: 1, arbitrary: fc.constantFrom(...ANY_OPTION).map((o) => [o]) },
    { weight: 1, arbitrary: fc.constantFrom(...ANY_OPTION, ...ANY_NAME).chain((o) => junk.map((j) => [o, j])) },
    { weight: 2, arbitrary: junk.map((j) => [j]) },
  );
  const path = fc.oneof(
    { weight: 8, arbitrary: fc.constant(spec.path) },
    { weight: 1, arbitrary: fc.constant(spec.path.slice(0, 1)) },
    { weight: 1, arbitrary: fc.constantFrom(...ANY_NAME).map((n) => [spec.path[0]!, n]) },
  );
  const fuzzed = fc.tuple(path, fc.array(piece, { maxLength: 6 })).map(([p, ps]) => [...p, ...ps.flat()]);
  // Mostly well-formed: the command's own options and arguments only, each at most once.
  const wellFormed = fc
    .tuple(
      spec.args.length ? fc.option(fc.constantFrom(...spec.args), { nil: undefined }) : fc.constant(undefined),
      fc.subarray(optNames).chain((os) => fc.tuple(...os.map((o) => fc.constantFrom(...(spec.options[o] ?? [""])).map((v) => [o, v])))),
      fc.subarray(spec.flags),
    )
    .map(([a, ovs, fs]) => [...spec.path, ...(a === undefined ? [] : [a]), ...ovs.flat(), ...fs]);
  return fc.oneof(fuzzed, wellFormed);
}

interface Outcome {
  code: number;
  out: string;
  err: string;
}

/** `main()` with stdout and stderr captured (and process.exitCode left as it was). */
async function runCli(args: string[]): Promise<Outcome> {
  const write = { out: process.stdout.write, err: process.stderr.write };
  let out = "";
  let err = "";
  const capture = (append: (s: string) => void) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      append(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture((s) => (out += s));
  process.stderr.write = capture((s) => (err += s));
  const before = process.exitCode;
  process.exitCode = undefined;
  let code: number;
  try {
    code = await main(["node", "tributary", ...args]);
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
    process.exitCode = before;
  }
  return { code, out, err };
}

const STACK = /^\s+at\s.+(:\d+:\d+\)?|<anonymous>)$/m;
const INTERNAL = /\b(TypeError|ReferenceError|RangeError|SyntaxError|AssertionError|Cannot read propert|is not a function|undefined is not|Maximum call stack)\b/;

/** The contract's shape of an outcome; returns the breaks (empty = fine). */
function breaksOf(args: string[], r: Outcome, allowed: number[]): string[] {
  const breaks: string[] = [];
  const all = `${r.out}\n${r.err}`;
  if (!allowed.includes(r.code)) breaks.push(`exit ${r.code} (allowed ${allowed.join("/")})`);
  if (STACK.test(all)) breaks.push("stack trace in the output");
  if (INTERNAL.test(r.err)) breaks.push(`internal error: ${r.err.trim().slice(0, 200)}`);
  const lines = r.err.split("\n").filter((l) => l.trim().length > 0);
  if (r.code !== 0) {
    const reason = lines.at(-1) ?? "";
    if (r.code === 2 && lines.length !== 1) breaks.push(`usage error in ${lines.length} lines on stderr`);
    if (!/^(error|tributary): \S/.test(reason)) breaks.push(`no one-line reason: ${JSON.stringify(reason.slice(0, 200))}`);
    if (r.code === 2) {
      // Names what it is about: an option or value given, an option or argument of a command, or a
      // variable of the configuration.
      const named =
        args.some((a) => {
          const t = a.split("=")[0]!.trim();
          return t.length >= 2 && reason.includes(t);
        }) ||
        /'conversationId'|'id'|<\w+>|--\w[\w-]*|REDIS_URL|missing command/.test(reason);
      if (!named) breaks.push(`usage error names no argument: ${reason}`);
    }
  }
  return breaks;
}

const ENV_KEYS = ["REDIS_URL", "REDIS_CLUSTER_NODES", "REDIS_KEY_PREFIX", "DATABASE_URL", "DATA_DIR", "PARTITIONS", "AUTH_JWT_SECRET", "LOG_LEVEL", "HOST", "PORT", "S3_BUCKET", "S3_ENDPOINT"];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
function useEnv(env: Record<string, string | undefined>): void {
  for (const k of ENV_KEYS) {
    const v = env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

let redis: PrivateRedis;
let db: TestDb;
let dataDir: string;
let upEnv: Record<string, string>;
let downEnv: Record<string, string>;

beforeAll(async () => {
  redis = await privateRedis();
  db = await testDatabase("pg");
  dataDir = mkdtempSync(join(tmpdir(), "trib-cli-fuzz-"));
  const common = { DATA_DIR: dataDir, PARTITIONS: "4", AUTH_JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "silent", HOST: "127.0.0.1" };
  upEnv = { ...common, REDIS_URL: redis.url, DATABASE_URL: db.env.DATABASE_URL as string };
  // Ports nothing listens on (taken free, then released).
  downEnv = { ...common, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/none` };
}, 120_000);

afterAll(async () => {
  useEnv(savedEnv);
  await redis?.cleanup();
  await db?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const auth = testAuthenticator();
const seen = new Map<string, number>();
const count = (env: string, r: Outcome) => seen.set(`${env}:${r.code}`, (seen.get(`${env}:${r.code}`) ?? 0) + 1);

describe("fast-check over CLI arguments: never a crash, always the contract's exit code and a one-line reason", () => {
  it("one-shot commands, dependencies up: normal behaviour (0 or 1) or a usage error naming the argument", async () => {
    useEnv(upEnv);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...COMMANDS).chain(vector), async (args) => {
        const r = await runCli(args);
        count("up", r);
        expect(breaksOf(args, r, [0, 1, 2]), `tributary ${JSON.stringify(args)}\nstdout: ${r.out.slice(0, 500)}\nstderr: ${r.err.slice(0, 500)}`).toEqual([]);
        // A printed token is one the edge accepts, with an integer expiry in the future.
        if (args[0] === "token" && r.code === 0 && !/Usage:/.test(r.out)) {
          const token = r.out.trim();
          await auth.verify(token);
          const exp = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: unknown }).exp;
          expect(Number.isSafeInteger(exp) && (exp as number) * 1000 > Date.now(), `exp ${String(exp)} of ${JSON.stringify(args)}`).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("one-shot commands, Redis and Postgres unreachable: exit 3 once the arguments are valid", async () => {
    useEnv(downEnv);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...COMMANDS).chain(vector), async (args) => {
        const r = await runCli(args);
        count("down", r);
        expect(breaksOf(args, r, [0, 2, 3]), `tributary ${JSON.stringify(args)}\nstdout: ${r.out.slice(0, 500)}\nstderr: ${r.err.slice(0, 500)}`).toEqual([]);
        // Only commands that need no dependency (token, help) may succeed.
        if (r.code === 0) expect(args.some((a) => ["token", "--help", "-h", "--version", "-V", "help"].includes(a)), JSON.stringify(args)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("the long-running roles and bench: a usage error, or (arguments valid) the configuration error — never a server", async () => {
    useEnv({ ...upEnv, REDIS_URL: "unusable", AUTH_JWT_SECRET: undefined });
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...ROLES)
          .chain(vector)
          // bench with a usable Redis URL of its own could start a run.
          .filter((args) => !args.some((a) => a.includes("redis://"))),
        async (args) => {
          const r = await runCli(args);
          count("roles", r);
          expect(breaksOf(args, r, [0, 2]), `tributary ${JSON.stringify(args)}\nstdout: ${r.out.slice(0, 500)}\nstderr: ${r.err.slice(0, 500)}`).toEqual([]);
          if (r.code === 0) expect(r.out, JSON.stringify(args)).toMatch(/Usage:|^\d+\.\d+/);
        },
      ),
      { numRuns: 200 },
    );
    console.log(`cli fuzz outcomes ${JSON.stringify(Object.fromEntries(seen))}`);
  });

  it("examples: every subcommand without arguments, unknown ones, and excess arguments", async () => {
    useEnv({ ...upEnv, REDIS_URL: "unusable" });
    for (const args of [[], ["nope"], ["dlq"], ["audit"], ["projections"], ["dlq", "nope"], ["edge", "extra"], ["migrate", "extra"], ["dlq", "list", "x"], ["replay"], ["help"], ["help", "dlq"]]) {
      const r = await runCli(args);
      expect(breaksOf(args, r, [0, 2]), `tributary ${JSON.stringify(args)}\nstdout: ${r.out.slice(0, 500)}\nstderr: ${r.err.slice(0, 500)}`).toEqual([]);
    }
  });
});
