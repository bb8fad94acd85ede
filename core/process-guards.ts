import { errorMessage } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * Last-resort handlers for a long-running role (edge, worker, projector, start).
 *
 * A promise rejection nobody handles is a bug, but it is a bug in ONE request's path (a client's
 * frame, one command): Node 20's default is to kill the process, which would drop every other
 * client and reply of the node because of one. So it is logged as an error and the process goes on.
 * Nothing is lost either way (I1: acknowledged state is in the streams), so this is about blast
 * radius, not about hiding the bug — the log line names it.
 *
 * An uncaught exception leaves the process in an unknown state: it is logged and the process exits
 * with 1 for its supervisor to restart it (leases and pending entries hand its work over).
 */
export function installProcessGuards(log: Logger): () => void {
  const onRejection = (reason: unknown): void => {
    log.error({ err: errorMessage(reason), stack: reason instanceof Error ? reason.stack : undefined }, "unhandled promise rejection (bug); the process goes on");
  };
  const onException = (e: Error): void => {
    log.fatal({ err: errorMessage(e), stack: e.stack }, "uncaught exception; exiting for a restart");
    process.exitCode = 1;
    // Give the logger a moment to flush, then go.
    setTimeout(() => process.exit(1), 100).unref();
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return () => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  };
}
