/**
 * Errors as data: one base error carrying the contract's code (CONTRACT §3) and its HTTP status,
 * so every boundary (HTTP, Socket.IO acknowledgements, CLI) maps failures the same way.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  LENGTH_REQUIRED: 411,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  CONCURRENCY_LIMIT: 429,
  INTERNAL: 500,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
  requestId?: string;
}

export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  /** Seconds a client should wait before retrying (RATE_LIMITED, OVERLOADED, …). */
  readonly retryAfter: number | undefined;
  /** A permanent error will fail the same way on every retry: consumers dead-letter it at once. */
  readonly permanent: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: unknown; retryAfter?: number; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "TributaryError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
    this.permanent = opts.permanent ?? false;
  }

  toBody(requestId?: string): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return requestId === undefined ? { error } : { error, requestId };
  }
}

/** The expected version did not match the stream's head (I2). */
export class VersionConflictError extends TributaryError {
  readonly expected: number;
  readonly actual: number;
  constructor(stream: string, expected: number, actual: number) {
    super("CONFLICT", `version conflict on ${stream}: expected ${expected}, stream is at ${actual}`, {
      details: { stream, expected, actual },
    });
    this.name = "VersionConflictError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** A stored entry could not be decoded (bad msgpack, unknown schema version): retrying cannot help. */
export class DecodeError extends TributaryError {
  constructor(message: string, cause?: unknown) {
    super("BAD_REQUEST", message, { permanent: true, cause });
    this.name = "DecodeError";
  }
}

/** A dependency (Redis, Postgres, blob store) is unreachable: CLI exit code 3, HTTP 503. */
export class DependencyError extends TributaryError {
  readonly dependency: string;
  constructor(dependency: string, message: string, cause?: unknown) {
    super("UNAVAILABLE", `${dependency} unreachable: ${message}`, { cause });
    this.name = "DependencyError";
    this.dependency = dependency;
  }
}

export function isTributaryError(e: unknown): e is TributaryError {
  return e instanceof TributaryError;
}

/** Normalise anything thrown into a message for logs and dead letters (never a bare `any`). */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === "string" ? e : JSON.stringify(e);
}
