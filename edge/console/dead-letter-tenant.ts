import { parseStreamKey } from "../../core/keys.js";
import type { DeadLetterEntry } from "../../core/redis/dead-letters.js";
import { decodeCommand } from "../../actors/runtime/command.js";
import type { AccessChecker } from "../access.js";

/**
 * Whose dead letter is this? The DLQ is one stream per partition shared by every tenant, so the
 * console's admin endpoints (own tenant only, I9) attribute each entry from its payload:
 *
 * - a command (`c` on `{pN}:cmd`): the tenant of the principal that sent it;
 * - a partition-log entry (`k` = the aggregate stream): for a conversation, its owner's tenant
 *   (from `conversation.created`, the same lookup every conversation route uses).
 *
 * Anything else — bytes that no longer decode, a trimmed original, a ledger or session entry — is
 * `null`, "unattributed": it belongs to no tenant we can name. See docs/console.md for how those
 * are shown (metadata only, never the payload).
 */
export async function deadLetterTenant(d: DeadLetterEntry, access: Pick<AccessChecker, "owner">): Promise<string | null> {
  const command = d.fields.c;
  if (command) {
    try {
      return decodeCommand(command).principal.tenantId;
    } catch {
      return null;
    }
  }
  const streamKey = d.fields.k?.toString("utf8");
  const ref = streamKey === undefined ? undefined : parseStreamKey(streamKey);
  if (ref?.kind === "conversation") {
    const owner = await access.owner(ref.id).catch(() => undefined);
    return owner?.tenantId ?? null;
  }
  return null;
}
