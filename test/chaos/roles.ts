import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/**
 * The `tributary` role processes of a chaos run, each restartable after a SIGKILL. Edges keep their
 * port across restarts so clients can come back to the same address; the archiver is a loop of
 * `tributary archive` passes (a pass that ends by itself is started again after a pause).
 * Output of every process is kept (bounded) for failure messages and the log-secret check.
 */
export const BIN = join(import.meta.dirname, "../../edge/cli/bin.mjs");

export type RoleKind = "edge" | "worker" | "projector" | "archiver" | "start";

export interface RoleSpec {
  name: string;
  kind: RoleKind;
  /** Edges only: the fixed port. */
  port?: number;
}

const OUTPUT_CAP = 2_000_000;

export class Role {
  proc: ChildProcess | undefined;
  kills = 0;
  starts = 0;
  output = "";
  private stopped = false;
  private loopTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: RoleSpec,
    private readonly env: Record<string, string>,
  ) {}

  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.spec.port}`;
  }

  private args(): string[] {
    // 30 s: well past any client retry of the run. Shorter ages (CHAOS_ARCHIVE_AGE=4s) reproduce the
    // open defect in docs/reliability.md: a repeated clientMessageId whose first message was archived
    // can no longer be answered and goes to the DLQ.
    if (this.spec.kind === "archiver") return ["archive", "--older-than", process.env.CHAOS_ARCHIVE_AGE ?? "30s", "--trim-log"];
    return [this.spec.kind];
  }

  start(): void {
    this.stopped = false;
    const env = { ...process.env, ...this.env, ...(this.spec.port ? { PORT: String(this.spec.port) } : {}) };
    const p = spawn(process.execPath, [BIN, ...this.args()], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.starts++;
    const keep = (d: Buffer) => {
      if (this.output.length < OUTPUT_CAP) this.output += d.toString();
    };
    p.stdout?.on("data", keep);
    p.stderr?.on("data", keep);
    p.on("exit", () => {
      if (this.proc !== p) return;
      // An archive pass that finished (or any role that died by itself) comes back after a pause.
      if (!this.stopped) this.loopTimer = setTimeout(() => !this.stopped && this.proc === p && this.start(), this.spec.kind === "archiver" ? 1000 : 500);
    });
    this.proc = p;
  }

  /** SIGKILL and wait for the exit; the role is started again by the caller. */
  async kill(): Promise<boolean> {
    const p = this.proc;
    if (!p || !this.alive) return false;
    this.stopped = true;
    clearTimeout(this.loopTimer);
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
    this.kills++;
    return true;
  }

  /** Graceful stop at the end of a run (SIGTERM, then SIGKILL after a bound). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.loopTimer);
    const p = this.proc;
    if (!p || !this.alive) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(t);
  }

  /** For edges: resolves once /healthz answers. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`${this.spec.name} not ready: ${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Runs a CLI command to completion (audit, reconcile, migrate). */
export function cli(args: string[], env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
