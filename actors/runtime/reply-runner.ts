import type { Usage } from "../responders/types.js";
import type { RunningReply, ConversationState } from "../conversation/index.js";
import { ReplyQueue } from "../responders/reply-inbox.js";
import type { ReplyHandle } from "../responders/types.js";

/**
 * One running reply, as one object: the chunks its responder pushed and no append has carried yet,
 * how far the reply got, and how it is stopped. A worker holds one per running conversation, and
 * with slow first tokens that is thousands at once for seconds — so a waiting reply holds no
 * suspended async function, promise or AbortSignal: the responder pushes into this object (a
 * ReplyQueue), and a push while nothing drains it calls the `onReady` it was armed with (after one
 * turn of the event loop, so that what a responder produces at once — its last piece and its `done`
 * — is taken together). The process then drains it with `takeNow()` until it is empty and calls
 * `idle()`; the next push wakes it again.
 */
export class ReplyRunner extends ReplyQueue {
  /** The reply as the conversation state had it when the runner loaded it. */
  reply: RunningReply | undefined;
  /** The state it was loaded from (the ledgers to settle on). */
  loadedState: ConversationState | undefined;
  /** Progress: the next delta index, the text so far, the usage to bill so far. */
  index = 0;
  text = "";
  usage: Usage = { inputTokens: 0, outputTokens: 0 };
  finishReason = "stop";
  failure: { code: string; message: string } | undefined;
  /** The responder's end (or failure) was taken: nothing more will come from it. */
  finished = false;
  /**
   * How the reply ended, once its end is appended: "completed" (possibly with its last pieces, before
   * a cancel could take effect), or "ended" (cancelled or failed by `endReply`). Undefined when the
   * runner retired without appending an end (handed over, or a step failed): a cancel then has not
   * taken effect.
   */
  outcome: "completed" | "ended" | undefined;
  /** Why it was stopped: "cancel" ends it with assistant.cancelled; "handover" leaves it to the next owner. */
  reason: "cancel" | "handover" | "shutdown" | undefined;
  stopped = false;
  responder: ReplyHandle | undefined;

  private isDone = false;
  private resolveDone: (() => void) | undefined;
  private donePromise: Promise<void> | undefined;

  constructor(
    readonly conversationId: string,
    readonly partition: number,
  ) {
    super();
  }

  /** Stops the responder (if it started) and wakes the drain, which then sees `stopped`. */
  stop(reason?: "cancel" | "handover" | "shutdown"): void {
    if (reason) this.reason = reason;
    if (this.stopped) return;
    this.stopped = true;
    this.responder?.stop();
    this.end();
  }

  /** Settles once the runner is finished (`markDone`); made only when someone waits. */
  whenDone(): Promise<void> {
    if (this.isDone) return Promise.resolve();
    this.donePromise ??= new Promise<void>((resolve) => (this.resolveDone = resolve));
    return this.donePromise;
  }

  markDone(): void {
    this.isDone = true;
    this.disarm();
    this.resolveDone?.();
  }
}
