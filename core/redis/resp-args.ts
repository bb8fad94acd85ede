import { Command } from "ioredis";

/**
 * The arguments of one Redis command, RESP-encoded into one Buffer as they are added — for the one
 * hot call whose arguments are many (the group-commit script: ~5 keys and ~8 arguments per append,
 * 64 appends a call). ioredis would build a Command from an argument array (flattened, keys
 * prefixed by string concatenation), then `toWritable` makes a string per argument and copies them
 * all into a Buffer: about a fifth of Node's CPU per append. Here every argument is written once,
 * straight into the frame; the key prefix is copied in as bytes.
 *
 * Encoding only: replies are still read by ioredis's own parser, and the frame goes through
 * ioredis's command queue (`FrameCommand`), so reply ordering, reconnection (the offline queue
 * re-writes the same frame) and errors are ioredis's. The encoding is RESP's array of bulk strings,
 * exactly what ioredis writes for the same arguments (test/core/resp-args.unit.spec.ts compares the
 * bytes with ioredis's own `toWritable`).
 */
export class RespArgs {
  private buf: Buffer;
  /** Where the arguments start: space kept free in front for the command's head (`frame`). */
  private readonly start: number;
  private pos: number;
  /** Bulk strings written so far. */
  count = 0;

  /** `sizeHint`: expected bytes of the arguments (the buffer grows if they are more). */
  constructor(sizeHint: number, headRoom = 96) {
    this.start = headRoom;
    this.pos = headRoom;
    this.buf = Buffer.allocUnsafe(headRoom + Math.max(256, sizeHint));
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** Decimal digits of a non-negative safe integer, written at pos (no string made). */
  private digits(n: number): void {
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    let i = this.pos + len;
    this.pos = i;
    for (let x = n; len > 0; len--, x = Math.floor(x / 10)) this.buf[--i] = 48 + (x % 10);
  }

  /** `$<n>\r\n` */
  private header(n: number): void {
    this.buf[this.pos++] = 36; // $
    this.digits(n);
    this.crlf();
  }

  private crlf(): void {
    this.buf[this.pos++] = 13;
    this.buf[this.pos++] = 10;
  }

  /** A text argument (UTF-8), optionally after a prefix of raw bytes (the client's key prefix). */
  string(s: string, prefix?: Buffer): this {
    const n = Buffer.byteLength(s, "utf8");
    const p = prefix ? prefix.length : 0;
    this.ensure(n + p + 24);
    this.header(n + p);
    if (prefix) {
      this.buf.set(prefix, this.pos);
      this.pos += p;
    }
    this.pos += this.buf.write(s, this.pos, n, "utf8");
    this.crlf();
    this.count++;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length + 24);
    this.header(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.crlf();
    this.count++;
    return this;
  }

  /** An integer as its decimal text (what ioredis sends for a number argument). */
  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) return this.string(String(n));
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    this.ensure(32);
    this.header(len);
    this.digits(n);
    this.crlf();
    this.count++;
    return this;
  }

  /** An argument already encoded as a RESP bulk string (see `RespArgs.bulk`). */
  encoded(bulk: Buffer): this {
    this.ensure(bulk.length);
    this.buf.set(bulk, this.pos);
    this.pos += bulk.length;
    this.count++;
    return this;
  }

  /** One argument encoded once, to be added many times with `encoded` (constant keys and values). */
  static bulk(s: string | Buffer): Buffer {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
    return Buffer.concat([Buffer.from(`$${b.length}\r\n`, "latin1"), b, Buffer.from("\r\n", "latin1")]);
  }

  /**
   * The whole command: `*<head count + count>\r\n`, then `head` (its first bulk strings, already
   * encoded: the command name and e.g. a script sha), then these arguments. Written into the room
   * kept in front when it fits, so the usual case copies nothing; the arguments are left unchanged,
   * so a second frame with another head (EVAL after NOSCRIPT) can be made from them.
   */
  frame(head: Buffer, headCount: number): Buffer {
    const star = Buffer.from(`*${headCount + this.count}\r\n`, "latin1");
    const size = star.length + head.length;
    if (size <= this.start) {
      const at = this.start - size;
      star.copy(this.buf, at);
      head.copy(this.buf, at + star.length);
      return this.buf.subarray(at, this.pos);
    }
    return Buffer.concat([star, head, this.buf.subarray(this.start, this.pos)]);
  }
}

/**
 * An ioredis Command whose bytes are a frame made by `RespArgs.frame`: it goes through the client's
 * own queue (replies are matched in order by ioredis), and is re-written as is if ioredis resends it
 * after a reconnection. Keys inside the frame must already carry the client's key prefix.
 * `name` is the real command name (ioredis checks it for subscriber mode, blocking commands, QUIT).
 * Replies come as ioredis decodes them with no reply encoding: bulk strings as Buffers.
 */
export class FrameCommand extends Command {
  constructor(
    name: string,
    private readonly bytes: Buffer,
  ) {
    super(name, []);
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}
