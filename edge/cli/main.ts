import { Command, CommanderError } from "commander";
import { EXIT, exitCodeFor, UsageError } from "./exit-codes.js";
import { registerCommands } from "./commands/index.js";

/**
 * Entry point of the `tributary` CLI. Each command lives in `commands/<name>.ts` and registers
 * itself in `commands/index.ts`; this file only maps outcomes to CONTRACT §1 exit codes, and makes
 * every usage error one line that names what it is about (CONTRACT §1) where commander's own would
 * not: a missing or unknown subcommand (commander prints the whole help), an excess argument
 * (commander gives only the count).
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("tributary")
    .description("Event-sourced actor system on Redis Streams for AI chat backends")
    .showHelpAfterError(false)
    .exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str.split("\n")[0] + "\n") });
  registerCommands(program);
  oneLineUsageErrors(program);
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

const pathOf = (c: Command): string => (c.parent ? `${pathOf(c.parent)} ${c.name()}` : c.name());

/**
 * A group (`dlq`, `audit`, `projections`, the program itself) run without a known subcommand
 * answers one line listing the subcommands; a command given more operands than it declares names
 * the first extra one.
 */
function oneLineUsageErrors(cmd: Command): void {
  for (const sub of cmd.commands) oneLineUsageErrors(sub);
  if (cmd.commands.length > 0) {
    const names = cmd.commands.map((c) => c.name()).join(", ");
    cmd.allowExcessArguments(true).action((_opts: unknown, self: Command) => {
      const first = self.args[0];
      if (first === undefined) throw new UsageError(`missing command: \`${pathOf(cmd)} <command>\`, one of ${names} (see --help)`);
      throw new UsageError(`unknown command ${JSON.stringify(first)} for \`${pathOf(cmd)}\`, expected one of ${names}`);
    });
    return;
  }
  cmd.allowExcessArguments(true).hook("preAction", (_self, action) => {
    const declared = action.registeredArguments.length;
    const extra = action.args[declared];
    if (action.args.length > declared && !action.registeredArguments.at(-1)?.variadic) {
      throw new UsageError(`unexpected argument ${JSON.stringify(extra)} for \`${pathOf(action)}\` (it takes ${declared === 0 ? "none" : action.registeredArguments.map((a) => `<${a.name()}>`).join(" ")})`);
    }
  });
}
