import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Histogram } from "../lib/histogram.js";
import { sampleProc, type ProcSample } from "../lib/proc.js";
import type { FromWorker, ToWorker, WorkerSpec } from "./protocol.js";

/**
 * The orchestrator's side of the client workers: forks them, hands each its share of the clients,
 * and folds their reports into running totals and a per-interval series.
 */
const WORKER_FILE = fileURLToPath(new URL("./worker.ts", import.meta.url));

export interface PoolTotals {
  received: number;
  lat: Histogram;
  first: Histogram;
  errors: Record<string, number>;
}

export class ClientPool {
  private readonly children: ChildProcess[] = [];
  private connectedBy = new Map<ChildProcess, number>();
  totals: PoolTotals = { received: 0, lat: new Histogram(), first: new Histogram(), errors: {} };
  /** Called on every worker tick, for live progress and series. */
  onTick: ((m: Extract<FromWorker, { t: "tick" }>) => void) | undefined;

  get connected(): number {
    let n = 0;
    for (const v of this.connectedBy.values()) n += v;
    return n;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /**
   * Forks `workers` processes, splits `spec.clients` among them (round robin, so every worker holds a
   * slice of every conversation) and resolves once every worker has tried all its connections.
   */
  async start(spec: WorkerSpec, workers: number): Promise<{ connected: number; failed: number; errors: string[] }> {
    const n = Math.max(1, Math.min(workers, spec.clients.length));
    const shares: WorkerSpec["clients"][] = Array.from({ length: n }, () => []);
    spec.clients.forEach((c, i) => shares[i % n]?.push(c));
    const readies = shares.map((clients) => {
      // tsx's loader in the child too: the worker is TypeScript, like the rest of the CLI.
      const child = fork(WORKER_FILE, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
      this.children.push(child);
      return new Promise<Extract<FromWorker, { t: "ready" }>>((resolve, reject) => {
        child.on("message", (m: FromWorker) => {
          if (m.t === "ready") resolve(m);
          else if (m.t === "tick") this.absorb(child, m);
        });
        child.once("exit", (code) => reject(new Error(`client worker exited with ${code}`)));
        child.send({ t: "start", spec: { ...spec, clients } } satisfies ToWorker);
      });
    });
    const results = await Promise.all(readies);
    return {
      connected: results.reduce((a, r) => a + r.connected, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      errors: results.map((r) => r.error).filter((e): e is string => e !== undefined),
    };
  }

  private absorb(child: ChildProcess, m: Extract<FromWorker, { t: "tick" }>): void {
    this.connectedBy.set(child, m.connected);
    this.totals.received += m.received;
    this.totals.lat.addPairs(m.lat);
    this.totals.first.addPairs(m.first);
    for (const [k, v] of Object.entries(m.errors)) this.totals.errors[k] = (this.totals.errors[k] ?? 0) + v;
    this.onTick?.(m);
  }

  /** Zero the totals (and the workers' unsent counts): the measurement starts now. */
  reset(): void {
    this.broadcast({ t: "reset" });
    this.totals = { received: 0, lat: new Histogram(), first: new Histogram(), errors: {} };
  }

  broadcast(m: ToWorker): void {
    for (const c of this.children) if (c.connected) c.send(m);
  }

  procSamples(): ProcSample[] {
    return this.pids.map((p) => sampleProc(p)).filter((s): s is ProcSample => s !== undefined);
  }

  async stop(): Promise<void> {
    this.broadcast({ t: "stop" });
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const kill = setTimeout(() => c.kill("SIGKILL"), 3000);
            c.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
          }),
      ),
    );
  }
}

/** Sum of CPU µs over samples (client processes). */
export const totalCpu = (s: ProcSample[]): number => s.reduce((a, x) => a + x.cpuMicros, 0);
