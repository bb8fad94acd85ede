import { readFileSync } from "node:fs";

/**
 * CPU time and resident memory of a local process from /proc (Linux), so server CPU is measured
 * apart from the client processes that load it. Clock ticks are USER_HZ, 100 on every Linux
 * build Node supports (sysconf is not reachable from Node without a native module).
 */
const TICK_MICROS = 10_000;

export interface ProcSample {
  /** user + system CPU since the process started, µs. */
  cpuMicros: number;
  rssBytes: number;
  at: number;
}

/** undefined when the process is gone or /proc is unavailable. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return { cpuMicros: (utime + stime) * TICK_MICROS, rssBytes: m ? Number(m[1]) * 1024 : 0, at: Date.now() };
  } catch {
    return undefined;
  }
}

/** CPU share (1 = one core) between two samples. */
export function cpuShare(a: ProcSample, b: ProcSample): number {
  const wall = (b.at - a.at) * 1000;
  return wall > 0 ? (b.cpuMicros - a.cpuMicros) / wall : 0;
}
