// The projections' public surface (read models on Postgres / PGlite), named export by export.
export { openDatabase, openPg, openPglite, servePglite, servedPgliteUrl, portFile, type Db, type DbTarget, type OpenedDb, type PgOptions, type ServedPglite } from "./db.js";
export { applyBatch, applyInTransaction, StaleRangeError, READMODEL_LOCK, type ApplyOptions, type ApplyResult } from "./apply.js";
export { Projector, projectPartition, type ProjectorOptions, type ProjectorCounters } from "./projector.js";
export { redisLogSource, type LogSource, type LogRecord } from "./log-source.js";
export {
  listConversations,
  getConversation,
  getQuota,
  spend,
  ListConversationsQuery,
  SpendQuery,
  SPEND_GROUPS,
  type ConversationListItem,
  type ConversationPage,
  type ConversationDetail,
  type MessageView,
  type QuotaBody,
  type QuotaDefaults,
  type SpendBody,
  type SpendGroupBy,
  type SpendInput,
  type SpendRowOut,
  type SpendTotals,
} from "./queries.js";
export { rebuild, dropSchema, type RebuildOptions, type RebuildResult } from "./rebuild.js";
export { projectionStatus, type PartitionStatus } from "./status.js";
export { reconcile, type ReconcileResult, type SpendDifference } from "./reconcile.js";
export { liveCheckpoints } from "./checkpoints.js";
export { dumpReadModels, type ReadModelDump } from "./dump.js";
export { parseInt8, parseNumeric, toInt } from "./int8.js";
export { READ_MODELS, type Database, type ReadModelName } from "./schema.js";
