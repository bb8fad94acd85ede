/**
 * Where a token may come from (CONTRACT §2), one function per source so HTTP, SSE and Socket.IO read
 * them the same way. Each returns undefined when its source carries no token; none throws.
 */

/** `Authorization: Bearer <token>` (scheme case-insensitive). */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^\s*Bearer\s+([^\s]+)\s*$/i.exec(authorization);
  return m?.[1];
}

/** Cookie names in the contract's order of preference. */
export const TOKEN_COOKIES = ["__Secure-LATC", "access_token"] as const;

/** Parse a Cookie header into name → first value (later duplicates lose, as in browsers' order). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!out.has(name)) {
      try {
        out.set(name, decodeURIComponent(value));
      } catch {
        out.set(name, value);
      }
    }
  }
  return out;
}

/** Cookie `__Secure-LATC`, else cookie `access_token`. */
export function cookieToken(cookieHeader: string | undefined): string | undefined {
  const cookies = parseCookies(cookieHeader);
  for (const name of TOKEN_COOKIES) {
    const v = cookies.get(name);
    if (v) return v;
  }
  return undefined;
}

/**
 * Query `access_token`. Only SSE may use it: EventSource cannot set headers, and everywhere else a
 * token in the URL would needlessly land in proxy logs.
 */
export function queryToken(query: string | URLSearchParams | undefined): string | undefined {
  if (query === undefined) return undefined;
  const params = typeof query === "string" ? new URLSearchParams(query.startsWith("?") ? query.slice(1) : query) : query;
  const v = params.get("access_token");
  return v ? v : undefined;
}

/** Socket.IO handshake `auth: {token}`. */
export function handshakeToken(auth: unknown): string | undefined {
  if (typeof auth !== "object" || auth === null) return undefined;
  const t = (auth as { token?: unknown }).token;
  return typeof t === "string" && t.length > 0 ? t : undefined;
}

export interface TokenCarriers {
  authorization?: string | undefined;
  cookie?: string | undefined;
  /** Raw query string; consulted only when `allowQuery` is set (SSE). */
  query?: string | undefined;
  /** Socket.IO handshake auth payload. */
  handshakeAuth?: unknown;
}

/** The first token in the contract's order: header, cookie, query (SSE only), handshake auth. */
export function findToken(c: TokenCarriers, opts: { allowQuery?: boolean } = {}): string | undefined {
  return (
    bearerToken(c.authorization) ??
    cookieToken(c.cookie) ??
    (opts.allowQuery ? queryToken(c.query) : undefined) ??
    handshakeToken(c.handshakeAuth)
  );
}
