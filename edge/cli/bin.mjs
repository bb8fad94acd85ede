#!/usr/bin/env node
// The `tributary` executable. TypeScript sources run through tsx's loader, so `npx tributary`
// works straight after `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv);
