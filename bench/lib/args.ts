/**
 * The flags of a bench script: `--name value` pairs on its command line. Benches are run by hand
 * with a few numeric or string flags, documented in their header comments and docs/benchmarks.md;
 * the CLI proper (edge/cli) uses commander with validation.
 */
const argv = process.argv.slice(2);

/** The value after `name`, or undefined when the flag is absent. */
export function flag(name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The value after `name` as a number, or `dflt` when the flag is absent. */
export function numberFlag(name: string, dflt: number): number {
  const v = flag(name);
  return v === undefined ? dflt : Number(v);
}

/** The value after `name`, or `dflt` when the flag is absent or has no value. */
export function stringFlag(name: string, dflt: string): string {
  return flag(name) ?? dflt;
}

/** Whether `name` is on the command line (a switch without a value). */
export function hasFlag(name: string): boolean {
  return argv.includes(name);
}
