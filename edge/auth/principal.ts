import { z } from "zod";

/**
 * CONTRACT §2: who is calling. Claims are validated with zod after the signature check, so a token
 * signed by a trusted key but shaped wrongly (missing tenant, unknown tier) is still refused.
 */
export const TIERS = ["anonymous", "registered", "privileged"] as const;
export type Tier = (typeof TIERS)[number];

/** Ids end up inside Redis keys and log lines: keep them printable and bounded. */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:@|-]+$/, "expected an id of [A-Za-z0-9_.:@|-]");

export const ClaimsSchema = z.object({
  sub: id,
  tid: id,
  pid: id.optional(),
  tier: z.enum(TIERS),
  // Identity providers often omit empty arrays; no roles is the least privilege.
  roles: z.array(z.string().max(64)).max(32).default([]),
  exp: z.number().int().positive(),
});
export type Claims = z.infer<typeof ClaimsSchema>;

export interface Principal {
  userId: string;
  tenantId: string;
  projectId: string | undefined;
  tier: Tier;
  roles: string[];
  /** Seconds since the epoch; long-lived connections close when it passes. */
  exp: number;
}

export function principalFromClaims(c: Claims): Principal {
  return { userId: c.sub, tenantId: c.tid, projectId: c.pid, tier: c.tier, roles: c.roles, exp: c.exp };
}

export const isAdmin = (p: Principal): boolean => p.roles.includes("admin");
/** `auditor` and `admin` may read every conversation of their own tenant (never another's). */
export const seesWholeTenant = (p: Principal): boolean => p.roles.includes("admin") || p.roles.includes("auditor");
