// Audit and history: pure verification of stored entries, and the archive seam (EntrySource).
export type { StoredEntry, EntryRange, EntrySource, AuditTarget } from "./entry.js";
export { history, type HistorySources } from "./history.js";
export {
  verifyStep,
  verifyStream,
  describeBreak,
  GENESIS_STATE,
  type ChainState,
  type AuditBreak,
  type AuditBreakKind,
  type StepResult,
  type StreamAuditResult,
} from "./verify.js";
export { auditStream, auditAll, type AuditSources, type AuditSummary } from "./walker.js";
