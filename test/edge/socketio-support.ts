import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { Envelope } from "../../core/envelope.js";
import { TributaryError } from "../../core/errors.js";
import type { EventStore } from "../../core/event-store.js";
import { createLogger } from "../../core/logger.js";
import { createRedisEventStore } from "../../core/redis/event-store.js";
import { createAccessChecker } from "../../edge/access.js";
import type { Commands, PostMessageInput } from "../../edge/deps.js";
import { Fanout } from "../../edge/fanout/index.js";
import { attachSocketIo, type SocketIoDeps, type SocketIoOptions, type SocketIoServer } from "../../edge/socketio/index.js";
import { closeListenSocket, createApp, listenApp, type TemplatedApp, type us_listen_socket } from "../../edge/uws.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { testAuthenticator } from "../support/tokens.js";

/**
 * A Socket.IO edge in the test process: real uWS, real Redis (random key prefix), real fan-out,
 * real token verification and access checks; only the command interface is a fake (ours).
 */
export const PARTITIONS = 4;

export class FakeCommands implements Pick<Commands, "postMessage" | "cancel"> {
  readonly posted: PostMessageInput[] = [];
  async postMessage(input: PostMessageInput) {
    if (input.text === "conflict") throw new TributaryError("CONFLICT", "a reply is running");
    if (input.text === "slow") return { kind: "pending" as const, body: { commandId: "cmd-1", status: "pending" as const } };
    this.posted.push(input);
    return {
      kind: "accepted" as const,
      status: 201 as const,
      body: { messageId: `m-${input.clientMessageId}`, replyId: `r-${input.clientMessageId}`, offset: "1-0" },
    };
  }
  async cancel() {
    return { cancelled: false };
  }
}

export interface SioEdge {
  app: TemplatedApp;
  r: TestRedis;
  store: EventStore;
  fanout: Fanout;
  sio: SocketIoServer;
  commands: FakeCommands;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** `shared`: another edge's Redis (same key prefix), to run several edge nodes on one Redis. */
export async function startEdge(
  options: Partial<SocketIoOptions> = {},
  shared?: TestRedis,
  extra: (r: TestRedis) => Partial<SocketIoDeps> = () => ({}),
): Promise<SioEdge> {
  const r = shared ?? (await testRedis("single"));
  const store = createRedisEventStore(r.client, { partitions: PARTITIONS, idemTtlMs: 60_000 });
  const app = createApp();
  const fanout = new Fanout({ redis: r.client, partitions: PARTITIONS, publish: (t, f) => app.publish(t, f), blockMs: 2000 });
  const commands = new FakeCommands();
  const sio = attachSocketIo(
    app,
    {
      fanout,
      auth: testAuthenticator(),
      access: createAccessChecker(r.client, PARTITIONS),
      commands,
      redis: r.client,
      log: createLogger("silent"),
      ...extra(r),
    },
    options,
  );
  const { socket, port } = await listenApp(app, "127.0.0.1", 0);
  const listen: us_listen_socket = socket;
  return {
    app,
    r,
    store,
    fanout,
    sio,
    commands,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      closeListenSocket(listen);
      sio.close();
      await fanout.stop();
      if (!shared) await r.cleanup();
    },
  };
}

export const newId = (p: string): string => `${p}-${randomUUID().replace(/-/g, "").slice(0, 12)}`;

/** A conversation owned by (tenant, user), with `conversation.created` first (what access checks read). */
export class Conversation {
  version = 0;
  readonly offsets: string[] = [];
  readonly id = newId("c");
  constructor(
    private readonly store: EventStore,
    readonly tenantId: string,
    readonly ownerId: string,
  ) {}

  async create(): Promise<this> {
    await this.push([{ type: "conversation.created", data: { title: "t", model: "sim", ownerId: this.ownerId, tenantId: this.tenantId, projectId: null } }]);
    return this;
  }

  /** Append `n` deltas, one append each (text padded to `pad` characters); returns their offsets. */
  async deltas(n: number, pad = 0): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const index = this.version - 1;
      const text = `d${index}`.padEnd(pad, ".");
      out.push(...(await this.push([{ type: "assistant.delta", data: { messageId: "m1", index, text } }])));
    }
    return out;
  }

  private async push(events: Array<{ type: string; data: unknown }>): Promise<string[]> {
    const at = new Date().toISOString();
    const res = await this.store.append(
      { kind: "conversation", id: this.id },
      this.version,
      events.map((e) => ({ ...e, at })),
      randomUUID(),
    );
    this.version = res.toVersion;
    this.offsets.push(...res.offsets);
    return res.offsets;
  }
}

/** A stock client recording every chat_event (envelope, offset) it gets. */
export class Client {
  readonly socket: Socket;
  readonly events: Array<{ env: Envelope; offset: string }> = [];
  readonly errors: Error[] = [];

  constructor(url: string, opts: Parameters<typeof io>[1]) {
    this.socket = io(url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200, ...opts });
    this.socket.on("chat_event", (env: Envelope, offset: string) => this.events.push({ env, offset }));
    this.socket.on("connect_error", (e: Error) => this.errors.push(e));
  }

  /** Offsets received for one conversation, in arrival order. */
  offsetsOf(conversationId: string): string[] {
    return this.events.filter((e) => e.env.conversationId === conversationId).map((e) => e.offset);
  }

  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once("connect", () => resolve());
      this.socket.once("connect_error", (e: Error) => reject(e));
    });
  }

  emit<T = Record<string, unknown>>(event: string, payload: unknown): Promise<T> {
    return this.socket.timeout(20_000).emitWithAck(event, payload) as Promise<T>;
  }

  /**
   * Drop the transport under the client (it reconnects by itself). Both listeners are in place
   * before the drop, so a reconnection faster than the caller's next step is not missed.
   */
  dropTransport(): { dropped: Promise<void>; reconnected: Promise<void> } {
    const dropped = new Promise<void>((res) => this.socket.once("disconnect", () => res()));
    const reconnected = dropped.then(() => new Promise<void>((res) => this.socket.once("connect", () => res())));
    this.socket.io.engine.close();
    return { dropped, reconnected };
  }

  close(): void {
    this.socket.disconnect();
    this.socket.io.engine?.close();
  }
}
