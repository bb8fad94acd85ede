import { ReplyInbox } from "./reply-inbox.js";
import type { ReplyHandle, ReplyRequest, ReplySink, ResponderChunk, ResponderRequest, StartReply } from "./types.js";

/**
 * The two forms of a responder (types.ts), each derived from the other, so a responder writes only
 * the one natural to it and the other behaves the same: the same chunks in the same order, the same
 * failure, and stopping is aborting.
 */

/** The pull form of a push responder: an abort stops it, and the stream rejects with the reason. */
export function streamOf(start: StartReply): (req: ResponderRequest) => AsyncIterable<ResponderChunk> {
  return async function* stream(req: ResponderRequest): AsyncGenerator<ResponderChunk> {
    const { signal, ...rest } = req;
    signal.throwIfAborted();
    const inbox = new ReplyInbox();
    const handle = start(rest, inbox);
    const onAbort = (): void => {
      handle.stop();
      inbox.end({ cause: signal.reason });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const { items, ended, error } = await inbox.take();
        for (const item of items) {
          signal.throwIfAborted(); // aborted between two items of one batch: nothing more is yielded
          yield item;
        }
        if (error) throw error.cause;
        if (ended) return;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      handle.stop(); // the consumer left early (break, throw): stop the responder too
    }
  };
}

/**
 * The push form of a pull responder: one AbortController per reply, aborted by `stop()`; what the
 * stream yields or throws after that is dropped. A stream that returns without a `done` ends the
 * reply as the stream did (the runtime then completes it with the usage so far).
 */
export function startOf(stream: (req: ResponderRequest) => AsyncIterable<ResponderChunk>): StartReply {
  return (req: ReplyRequest, sink: ReplySink): ReplyHandle => {
    const abort = new AbortController();
    let stopped = false;
    void (async () => {
      try {
        for await (const chunk of stream({ ...req, signal: abort.signal })) {
          if (stopped) return;
          sink.push(chunk);
        }
        if (!stopped) sink.end();
      } catch (e) {
        if (!stopped) sink.end({ cause: e });
      }
    })();
    return {
      stop: () => {
        stopped = true;
        abort.abort();
      },
    };
  };
}
