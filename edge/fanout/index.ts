/**
 * Fan-out straight from the aggregate streams (issue 5 item 5, DESIGN §Edge, I6, I7).
 *
 * Usage by a transport:
 *   const fanout = new Fanout({ redis, partitions, publish: (t, f) => app.publish(t, f), log });
 *   fanout.registerEncoder("sio", (env, seq) => …);            // once, at start-up
 *   const a = await fanout.attach(conversationId, from, {
 *     encoder: "sio",
 *     deliver: (frame) => ws.send(frame) !== 2 && ws.getBufferedAmount() < LIMIT,  // catch-up frames
 *     join: (topic) => ws.subscribe(topic),                    // live frames, native
 *     onDrop: () => ws.end(4000, "slow"),
 *   });
 *   ack({ ok: true, offset: a.offset });                       // before any frame (see attach)
 *   …later: a.detach(); ws.unsubscribe(fanout.topic(conversationId, "sio"));
 *
 * docs/fanout.md explains the hand-over argument, the wake-up stream and the archive seam.
 */
export { Fanout } from "./fanout.js";
export { olderEventsFrom, type EventsAcrossArchive } from "./archive.js";
export type {
  Attachment,
  Encoder,
  FanoutOptions,
  FanoutSink,
  FanoutStats,
  LiveResult,
  OlderEventsReader,
  PublishObserver,
} from "./types.js";
