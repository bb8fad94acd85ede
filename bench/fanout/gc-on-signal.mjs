/**
 * Loaded into every server of the fan-out bench with `--import`: on SIGUSR2 the process runs full
 * garbage collections (three, as V8's memory reducer does when a process falls idle, so that
 * finalisers and weak references settle too) and writes `gc <pid> done` to stderr. The
 * idle-connection figure samples RSS after one of these on both sides of its slope, so that it
 * measures what connections hold and not where V8's heap sizing happened to stand: without it the
 * same build read 1.8 to 6.8 KB per connection, and less than zero once the memory reducer ran
 * between the two samples.
 *
 * Plain .mjs (no TypeScript): it runs before tsx's loader is registered in `tributary edge`.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// Like `node --expose-gc`, without adding the flag to every server's command line.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");

process.on("SIGUSR2", () => {
  for (let i = 0; i < 3; i++) gc();
  process.stderr.write(`gc ${process.pid} done\n`);
});
