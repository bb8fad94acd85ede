// Preloaded into the soak's role processes (NODE_OPTIONS=--require): every second, the process's
// memory split — JS heap (V8's committed total and what is in use), Buffers and other memory V8 is
// told about (external, array buffers) and the RSS — written to $MEMORY_PROBE_DIR/<pid>.json, so
// the soak can tell growth of the JS heap from growth outside it (allocator, native modules).
// CommonJS and dependency-free: it runs before the TypeScript loader. NODE_OPTIONS preloads it
// into the loader's own thread too (same pid, its own small heap): only the main thread reports,
// or the two would overwrite each other's figures.
const dir = process.env.MEMORY_PROBE_DIR;
if (dir && require("node:worker_threads").isMainThread) {
  const { writeFileSync } = require("node:fs");
  const { join } = require("node:path");
  const file = join(dir, `${process.pid}.json`);
  setInterval(() => {
    const m = process.memoryUsage();
    writeFileSync(file, JSON.stringify({ rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }));
  }, 1000).unref();
}
