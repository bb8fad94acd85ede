/**
 * A short deterministic digest of a text, for idempotency checks that must not keep the text itself
 * in the state (a conversation remembers every clientMessageId; keeping 32,000-character texts in
 * every snapshot would be wasteful). Two independent 32-bit multiply-xorshift lanes plus the length:
 * 64 bits of hash, so an accidental match of two different texts under one clientMessageId is
 * ~2^-64. Not a cryptographic hash: the texts are the user's own, there is nobody to forge against.
 * Pure JS on purpose: the deciders import no I/O module (node:crypto included).
 */
export function textDigest(text: string): string {
  let h1 = 0xdeadbeef ^ text.length;
  let h2 = 0x41c6ce57 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
  return `${text.length}:${hex(h1)}${hex(h2)}`;
}
