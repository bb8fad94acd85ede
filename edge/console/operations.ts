import type { EntrySource } from "../../core/audit/entry.js";
import type { PartitionStatus } from "../../projections/status.js";

/**
 * What the operator-facing routes (the state route, the console's admin endpoints) need beyond the
 * request path's EdgeDeps. The edge role builds it from the pieces it already owns; an edge built
 * without it (tests, minimal embeddings) reads history from Redis only and reports projection lag
 * as unavailable rather than guessing.
 */
export interface OperationsDeps {
  /** A stream's full stored history, archive + Redis, oldest first (core's archived reader). */
  history: EntrySource;
  /** Projection lag per partition (projections/status.ts); absent = not known on this edge. */
  projectionStatus?: (() => Promise<PartitionStatus[]>) | undefined;
}
