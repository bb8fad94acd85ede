import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/keys.js";
import { testDatabase, type TestDb } from "../support/postgres.js";
import { testRedis, type TestRedis } from "../support/redis.js";
import { mintToken, TEST_JWT_SECRET } from "../support/tokens.js";

/**
 * The web console in a real browser (issue 6 item 5): Debian's chromium driven by playwright-core
 * against `tributary start` as a real process (edge, worker, projector, archiver) on the shared
 * Redis (own key prefix) and a fresh Postgres database. An admin logs in with a token, watches the
 * live numbers move while chat traffic runs, redrives a dead letter (a command entry that is not
 * msgpack, which the worker dead-letters at once as permanent), and views a conversation — replayed,
 * then followed live. A screenshot of the console is written to SCREENSHOT_DIR (or a temp dir).
 *
 * Every wait is bounded (playwright's per-call timeouts, vitest's test timeout); nothing asserts on
 * how long something took.
 */
// The page functions below run in the browser; the project compiles without the DOM library, so
// the few browser globals they touch are declared here, for this file only.
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  click(): void;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> & { length: number } };
declare const sessionStorage: { getItem(key: string): string | null };

const BIN = fileURLToPath(new URL("../../edge/cli/bin.mjs", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return statSync(CHROMIUM).isFile();
  } catch {
    return false;
  }
})();

let r: TestRedis;
let db: TestDb;
let dataDir: string;
let profileDir: string;
let proc: ChildProcess | undefined;
let base = "";
let browser: BrowserContext | undefined;
let stderr = "";
const tenant = `t-console-${Math.random().toString(36).slice(2, 8)}`;

async function startTributary(): Promise<string> {
  dataDir = mkdtempSync(join(tmpdir(), "tributary-console-"));
  proc = spawn(process.execPath, [BIN, "start"], {
    env: {
      ...process.env,
      ...r.env,
      ...db.env,
      REDIS_CLUSTER_NODES: "",
      REDIS_KEY_PREFIX: r.prefix,
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: "0",
      PARTITIONS: "4",
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      // Short, quick replies: a few bounded messages are the whole workload.
      SIM_TOKENS_PER_SEC: "30",
      SIM_MAX_TOKENS: "24",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tributary start did not listen: ${stderr}`)), 90_000);
    proc!.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /tributary listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    proc!.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tributary start exited with ${code}: ${stderr}`));
    });
  });
}

async function api(path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Post a message and wait (bounded) until the event log shows its reply finished. */
async function chat(conversationId: string, token: string, text: string): Promise<void> {
  const posted = await api(`/v1/conversations/${conversationId}/messages`, token, { text, clientMessageId: `m-${Math.random().toString(36).slice(2)}` });
  expect(posted.status, JSON.stringify(posted.json)).toBe(201);
  const replyId = posted.json.replyId as string;
  for (let i = 0; i < 600; i++) {
    const page = await api(`/v1/conversations/${conversationId}/events?format=json&from=${posted.json.offset}&limit=1000`, token);
    const done = (page.json.events as Array<{ type: string; data: { messageId?: string } }>).some(
      (e) => e.data.messageId === replyId && ["assistant.completed", "assistant.cancelled", "assistant.failed"].includes(e.type),
    );
    if (done) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`reply ${replyId} did not finish`);
}

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();

beforeAll(async () => {
  if (!hasChromium) return;
  r = await testRedis("single");
  db = await testDatabase("pg", { migrate: false });
  base = await startTributary();
  profileDir = mkdtempSync(join(tmpdir(), "tributary-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 1600 },
  });
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((res) => proc!.once("exit", res));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc?.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
  await db?.cleanup();
  await r?.cleanup();
  for (const d of [dataDir, profileDir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe.runIf(hasChromium)("web console in headless Chromium", () => {
  it("logs in, shows live numbers, redrives a dead letter, replays and follows a conversation, renders spend", async () => {
    const user = await mintToken({ sub: "alice", tid: tenant });
    const admin = await mintToken({ sub: "root", tid: tenant, roles: ["admin"] });
    const created = await api("/v1/conversations", user, { title: "console e2e" });
    expect(created.status).toBe(201);
    const conversationId = created.json.id as string;
    await chat(conversationId, user, "first message, before the console opens");

    const page = await browser!.newPage();
    page.setDefaultTimeout(60_000);
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));

    // A user token is refused with a reason; the admin token opens the console.
    await page.goto(`${base}/console`);
    await page.fill("#token", user);
    await page.click("#login-form button");
    await page.waitForFunction(() => document.querySelector("#login-error")?.textContent?.includes("no admin role"));
    await page.fill("#token", admin);
    await page.click("#login-form button");
    await page.waitForSelector("#app:not([hidden])");
    expect(await text(page, "#who")).toContain(`root @ ${tenant}`);
    expect(await page.evaluate(() => sessionStorage.getItem("tributary.console.token"))).toBe(admin);
    await page.waitForFunction(() => /events$/.test(document.querySelector("#lag-events")?.textContent ?? ""));
    expect(await page.locator("#lag-table tbody tr").count()).toBe(4);

    // A dead letter: a command entry that is not msgpack. The worker fails it as permanent.
    await r.client.xadd(keys.cmd(0), "*", "c", Buffer.from([0xc1, 0xc1, 0xc1, 0xc1]));
    const redriveButton = page.locator("#dlq-table tbody button").first();
    await redriveButton.waitFor();
    const deadId = (await redriveButton.getAttribute("data-id")) as string;
    expect(deadId).toMatch(/^0\/\d+-\d+$/);
    expect(await text(page, "#dlq-table tbody")).toContain("(unattributed)");
    await redriveButton.click();
    await page.waitForFunction((id) => document.querySelector("#dlq-message")?.textContent === `redriven ${id}`, deadId);
    const [, entryId] = deadId.split("/");
    expect(await r.client.xrange(keys.dlq(0), entryId as string, entryId as string)).toEqual([]);
    // Redriven to the worker, which dead-letters it again under a new id: the redrive really ran.
    await page.waitForFunction(
      (id) => [...document.querySelectorAll("#dlq-table tbody button")].some((b) => b.dataset.id !== id),
      deadId,
    );

    // The conversation viewer: replay from the log, then follow live over SSE.
    await page.waitForFunction(async () => {
      document.querySelector("#conversations-refresh")?.click();
      await new Promise((res) => setTimeout(res, 300));
      return document.querySelectorAll("#conversations button").length > 0;
    });
    await page.click(`#conversations button[data-id="${conversationId}"]`);
    await page.waitForFunction(() => document.querySelector("#viewer-status")?.textContent?.includes("following live"));
    expect(await text(page, "#transcript")).toContain("first message, before the console opens");
    expect(await text(page, "#viewer-title")).toContain("console e2e");
    await page.waitForFunction(() => Number(document.querySelector("#connections")?.textContent) >= 1);

    // Chat traffic while the console watches: deliveries grow, the transcript follows live.
    const deliveredBefore = Number.parseInt(await text(page, "#deliveries-total"), 10);
    await chat(conversationId, user, "second message, while the console follows");
    await chat(conversationId, user, "third message");
    await page.waitForFunction((before) => Number.parseInt(document.querySelector("#deliveries-total")?.textContent ?? "0", 10) > before, deliveredBefore);
    await page.waitForFunction(() => document.querySelector("#transcript")?.textContent?.includes("third message"));
    await page.waitForFunction(() => [...document.querySelectorAll("#transcript li.assistant .meta")].filter((m) => m.textContent?.includes("completed")).length === 3);
    expect(await text(page, "#viewer-status")).toMatch(/following live \(\d+ live\)/);
    await page.waitForFunction(() => Number.parseFloat(document.querySelector("#deliveries-rate")?.textContent ?? "0") > 0);

    // Spend: once the projector has the replies, the chart has a bar and the tables name user and model.
    await page.waitForFunction(async () => {
      document.querySelector("#spend-form button")?.click();
      await new Promise((res) => setTimeout(res, 300));
      return document.querySelector("#spend-user tbody")?.textContent?.includes("alice") ?? false;
    });
    expect(await text(page, "#spend-model tbody")).toMatch(/\S+/);
    const barHeights = await page.locator("#spend-chart rect.bar").evaluateAll((bars) => bars.map((b) => Number(b.getAttribute("height"))));
    expect(barHeights.some((h) => h > 0)).toBe(true);

    const shotDir = process.env.SCREENSHOT_DIR ?? dataDir;
    const shot = join(shotDir, "console.png");
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    // IHDR: width and height of a real page, not an empty 0×0 image.
    expect(png.readUInt32BE(16)).toBe(1280);
    expect(png.readUInt32BE(20)).toBeGreaterThan(600);
    expect(png.length).toBeGreaterThan(20_000);
    expect(pageErrors).toEqual([]);

    // Logging out forgets the token.
    await page.click("#logout");
    expect(await page.evaluate(() => sessionStorage.getItem("tributary.console.token"))).toBeNull();
    await page.close();
  });
});
