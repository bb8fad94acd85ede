/**
 * What the runtime needs from a responder is the responders' own interface (actors/responders/):
 * a stream of text pieces, then one `done` with the real usage, and the usage of a reply cut short.
 * The runtime turns each piece into an `assistant.delta` and the end into `assistant.completed`;
 * stopping it (the push form's handle, or the pull form's signal) is how `cancel`, a hand-over and
 * shutdown end it early.
 */
export type { ResponderRequest, ResponderChunk } from "../responders/types.js";
import type { Responder } from "../responders/types.js";

/** `start`, `usageSoFar` and `resumable` are optional for the runtime: tests may pass a bare stream. */
export type ReplyResponder = Pick<Responder, "stream"> & Partial<Pick<Responder, "start" | "usageSoFar" | "resumable">>;
