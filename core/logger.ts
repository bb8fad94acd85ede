import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON-lines logger. Tokens and secrets never reach the log: the usual carriers are redacted at
 * the logger, so a careless `log.info({ headers })` cannot leak them.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? "info", bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    redact: {
      paths: [
        "token",
        "*.token",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "headers.cookie",
        "*.headers.authorization",
        "*.headers.cookie",
        "access_token",
        "*.access_token",
        "secret",
        "*.secret",
        "apiKey",
        "*.apiKey",
      ],
      censor: "[redacted]",
    },
  });
}
