import type { Command } from "commander";
import { registerArchive } from "./archive.js";
import { registerAudit } from "./audit.js";
import { registerBench } from "./bench.js";
import { registerEdge } from "./edge.js";
import { registerDlq } from "./dlq.js";
import { registerMigrate } from "./migrate.js";
import { registerProjections } from "./projections.js";
import { registerProjector } from "./projector.js";
import { registerReconcile } from "./reconcile.js";
import { registerSpend } from "./spend.js";
import { registerReplay } from "./replay.js";
import { registerState } from "./state.js";
import { registerStart } from "./start.js";
import { registerWorker } from "./worker.js";
import { registerToken } from "./token.js";

/** Every CLI command, in the order `--help` lists them. One file per command. */
export function registerCommands(program: Command): void {
  registerEdge(program);
  registerStart(program);
  registerReplay(program);
  registerState(program);
  registerAudit(program);
  registerDlq(program);
  registerArchive(program);
  registerMigrate(program);
  registerWorker(program);
  registerProjector(program);
  registerProjections(program);
  registerSpend(program);
  registerReconcile(program);
  registerToken(program);
  registerBench(program);
}
