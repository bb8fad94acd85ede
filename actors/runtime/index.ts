// The actor runtime: commands in, decisions out, replies streamed (DESIGN §Actors).
export { CommandRecord, Principal, encodeCommand, decodeCommand, type CommandResult } from "./command.js";
export { CommandBus, resultError, type SendOptions, type Sent } from "./command-bus.js";
export { CommandApi, DECISION_WAIT_MS } from "./command-api.js";
export { ReplyListener, replyStreamKey, sendReply } from "./reply-bus.js";
export { AggregateRepository, type EventReader, type Loaded, type RepositoryOptions } from "./repository.js";
export { blobSnapshotStore, metaSnapshotPointer, noSnapshots, type Snapshot, type SnapshotPointer, type SnapshotStore } from "./snapshots.js";
export { metaStreamProbe, type StreamFacts, type StreamProbe } from "./stream-probe.js";
export { ConversationProcess, type ConversationProcessOptions } from "./conversation-process.js";
export { LedgerPort, quotaViewOf, type LedgerView } from "./ledger-port.js";
export { ActorWorker, allPartitionsOwnership, type PartitionOwnership, type WorkerOptions } from "./worker.js";
export type { ReplyResponder, ResponderChunk, ResponderRequest } from "./responder.js";
export { runningKey, listRunning } from "./running-set.js";
