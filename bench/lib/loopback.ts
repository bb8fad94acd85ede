/**
 * Every bench targets this machine only: a load generator pointed at someone else's host is an
 * attack, not a benchmark. Names are not resolved (a name could resolve anywhere); only literal
 * loopback addresses and `localhost` pass.
 */
export function isLoopbackHostname(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) && h.split(".").every((o) => Number(o) <= 255);
}

/** The URL, parsed, when it is http(s) on loopback; throws with a one-line reason otherwise. */
export function requireLoopbackUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`not a URL: ${text}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`must be http(s), got ${u.protocol}`);
  if (!isLoopbackHostname(u.hostname)) throw new Error(`must be a loopback address (127.0.0.0/8, ::1, localhost), got ${u.hostname}`);
  return u;
}
