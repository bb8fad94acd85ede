/**
 * Poll `fn` every `intervalMs` until it answers something other than undefined; throws after
 * `timeoutMs` (a test that waits for an event that never comes fails instead of hanging).
 */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
