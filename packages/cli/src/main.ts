import { benchCommand } from './commands/bench.js';
import { demoCommand, DEMO_HELP } from './commands/demo.js';
import { runCommand } from './commands/run.js';
import { trainCommand } from './commands/train.js';
import { UsageError } from './usage-error.js';

type Command = (args: readonly string[]) => Promise<number>;

const COMMANDS: Readonly<Record<string, { run: Command; summary: string }>> = {
  demo: { run: demoCommand, summary: 'adapt a small model on synthetic shifted data' },
  train: { run: trainCommand, summary: 'train and save a source model on a data set' },
  run: { run: runCommand, summary: 'adapt a source model on one corrupted test stream' },
  bench: { run: benchCommand, summary: 'compare source, always-accept and Safe MetaNet over corruptions' },
};

/** Top-level help text. */
export function mainHelp(): string {
  const rows = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(8)}${command.summary}`);
  return `Usage: safe-metanet <command> [flags]

Test-time adaptation with gated adapter updates, rollback and scope expansion.

Commands:
${rows.join('\n')}

Run 'safe-metanet <command> --help' for the flags of a command.
`;
}

interface ErrorWithStatus {
  readonly exitStatus: number;
  readonly message: string;
}

function hasExitStatus(error: unknown): error is ErrorWithStatus {
  return error instanceof Error && typeof (error as Partial<ErrorWithStatus>).exitStatus === 'number';
}

/** Runs the CLI with the arguments after the program name; returns the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  const verbose = args.includes('--verbose');
  try {
    const [name, ...rest] = args;
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      process.stdout.write(mainHelp());
      return name === undefined ? 2 : 0;
    }
    const command = COMMANDS[name];
    if (command === undefined) {
      throw new UsageError(`Unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}. Run 'safe-metanet --help' for usage.`);
    }
    return await command.run(rest);
  } catch (error) {
    const status = hasExitStatus(error) ? error.exitStatus : 1;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`safe-metanet: ${message}\n`);
    if (verbose && error instanceof Error && error.stack !== undefined) {
      process.stderr.write(`${error.stack}\n`);
    }
    return status;
  }
}

export { DEMO_HELP };
