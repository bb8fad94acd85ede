import { Command, CommanderError } from "commander";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { registerCommands } from "./commands/index.js";

/**
 * Entry point of the `tributary` CLI. Each command lives in `commands/<name>.ts` and registers
 * itself in `commands/index.ts`; this file only maps outcomes to CONTRACT §1 exit codes.
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("tributary")
    .description("Event-sourced actor system on Redis Streams for AI chat backends")
    .showHelpAfterError(false)
    .exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str.split("\n")[0] + "\n") });
  registerCommands(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      if (e.exitCode === 0) return EXIT.OK;
      return EXIT.USAGE;
    }
    const { code, line } = exitCodeFor(e);
    process.stderr.write(`tributary: ${line}\n`);
    return code;
  }
}
