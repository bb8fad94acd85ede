import { ConfigError } from "../../core/config.js";
import { DependencyError, errorMessage } from "../../core/errors.js";

/** CONTRACT §1 exit codes. */
export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2, DEPENDENCY: 3 } as const;

/** A check failed (audit break, reconcile difference): exit 1 with the reason. */
export class CheckFailed extends Error {}

/** Bad arguments: exit 2 with a one-line reason. */
export class UsageError extends Error {}

/** Map anything a command throws to an exit code and a one-line reason on stderr. */
export function exitCodeFor(e: unknown): { code: number; line: string } {
  if (e instanceof UsageError || e instanceof ConfigError) return { code: EXIT.USAGE, line: errorMessage(e) };
  if (e instanceof CheckFailed) return { code: EXIT.CHECK_FAILED, line: errorMessage(e) };
  if (e instanceof DependencyError) return { code: EXIT.DEPENDENCY, line: errorMessage(e) };
  const msg = errorMessage(e);
  // ioredis / pg / undici connection failures surface as these system error codes.
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && ["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH"].includes(code)) {
    return { code: EXIT.DEPENDENCY, line: `dependency unreachable: ${msg}` };
  }
  if (/Connection is closed|connect ECONNREFUSED|Reached the max retries|All nodes failed|Failed to refresh slots cache/i.test(msg)) {
    return { code: EXIT.DEPENDENCY, line: `dependency unreachable: ${msg}` };
  }
  return { code: EXIT.CHECK_FAILED, line: msg };
}
