import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { InputError, type RunnerState } from '@safe-metanet/core';

import { writeFileAtomically } from './output-files.js';
import { UsageError } from './usage-error.js';

/** Version of the checkpoint file layout; a file of another version is rejected. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Checkpoint file name in the working directory when neither --checkpoint nor --log-file is given. */
export const DEFAULT_CHECKPOINT_FILE = 'safe-metanet-run.checkpoint.json';

/** The settings that decide a run's records; a checkpoint resumes only a run with the same ones. */
export interface RunIdentity {
  /** Every config setting, with snake_case keys (toSnakeCase). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly dataset: string;
  /** SHA-256 fingerprint of the data set's images and labels. */
  readonly dataset_fingerprint: string;
  readonly corruption: string;
  readonly severity: number;
  readonly batch_size: number;
  /** The --max-samples value, null when absent. */
  readonly max_samples: number | null;
  /** Weight file of the source model. */
  readonly source_model: string;
}

/** Contents of a checkpoint file of `safe-metanet run`. */
export interface RunCheckpoint {
  readonly format_version: typeof CHECKPOINT_FORMAT_VERSION;
  readonly identity: RunIdentity;
  /** Zero-based index of the first batch not yet processed. */
  readonly next_batch: number;
  /** The runner's exportState(). */
  readonly state: RunnerState;
}

/**
 * Returns the checkpoint path: --checkpoint, else `<log-file>.checkpoint.json`, else the --resume file,
 * else DEFAULT_CHECKPOINT_FILE in the working directory.
 */
export function checkpointPath(options: { checkpoint?: string | undefined; logFile?: string | undefined; resume?: string | undefined }): string {
  if (options.checkpoint !== undefined) {
    return options.checkpoint;
  }
  if (options.logFile !== undefined) {
    return `${options.logFile}.checkpoint.json`;
  }
  return options.resume ?? DEFAULT_CHECKPOINT_FILE;
}

/** Creates the folder of the checkpoint file, so that an unwritable path fails before a long run starts. */
export function prepareCheckpointFolder(file: string): void {
  try {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`Cannot write the checkpoint ${file}: ${code}. Pass --checkpoint with a path in a writable folder.`);
  }
}

/** Writes a checkpoint under a temporary name and renames it into place, so that a crash never leaves a half-written file. */
export function writeCheckpoint(file: string, checkpoint: RunCheckpoint): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomically(file, `${JSON.stringify(checkpoint)}\n`);
}

/** Reads and checks the layout of a checkpoint file; a missing, unreadable or corrupt file is an InputError. */
export function readCheckpoint(file: string): RunCheckpoint {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(error)})`;
    throw new InputError(`Checkpoint file ${file} ${problem}; pass the file that an interrupted 'safe-metanet run' wrote.`, { cause: error });
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError(`Checkpoint file ${file} is not valid JSON (${reason}); the file is corrupt, so start the run again without --resume.`, {
      cause: error,
    });
  }

  const problem = findLayoutProblem(parsed);
  if (problem !== undefined) {
    throw new InputError(`Checkpoint file ${file} is invalid: ${problem}; start the run again without --resume.`);
  }
  return parsed as RunCheckpoint;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

// Returns the first structural problem of a parsed checkpoint, or undefined. The adapter values are checked
// against the runner by importState, which has the expected shapes.
function findLayoutProblem(value: unknown): string | undefined {
  if (!isRecord(value)) {
    return 'it is not a JSON object';
  }
  if (value['format_version'] !== CHECKPOINT_FORMAT_VERSION) {
    return `format_version is ${JSON.stringify(value['format_version'])}, expected ${CHECKPOINT_FORMAT_VERSION}`;
  }

  const identity = value['identity'];
  if (!isRecord(identity) || !isRecord(identity['config'])) {
    return "'identity' with its 'config' is missing";
  }
  for (const key of ['dataset', 'dataset_fingerprint', 'corruption', 'source_model']) {
    if (typeof identity[key] !== 'string') {
      return `identity.${key} is not a string`;
    }
  }
  for (const key of ['severity', 'batch_size']) {
    if (!isCount(identity[key])) {
      return `identity.${key} is not a non-negative integer`;
    }
  }
  if (identity['max_samples'] !== null && !isCount(identity['max_samples'])) {
    return 'identity.max_samples is neither null nor a non-negative integer';
  }

  const state = value['state'];
  if (!isRecord(state)) {
    return "'state' is missing";
  }
  if (!Array.isArray(state['scope']) || !state['scope'].every((layer) => typeof layer === 'string')) {
    return 'state.scope is not a list of layer names';
  }
  if (!isRecord(state['adapters'])) {
    return 'state.adapters is not an object';
  }
  for (const [layer, variables] of Object.entries(state['adapters'])) {
    if (!Array.isArray(variables) || !variables.every(isVariableState)) {
      return `state.adapters.${layer} is not a list of {shape, values} with numeric values`;
    }
  }
  if (!Array.isArray(state['records']) || !state['records'].every(isRecord)) {
    return 'state.records is not a list of records';
  }
  if (!isCount(state['samplesSeen'])) {
    return 'state.samplesSeen is not a non-negative integer';
  }
  if (state['memory'] !== undefined && !isMemoryState(state['memory'])) {
    return 'state.memory is not {shape, values, labels, arrivals} with numeric values';
  }
  if (!isCount(value['next_batch'])) {
    return 'next_batch is not a non-negative integer';
  }
  if (value['next_batch'] !== state['records'].length) {
    return `next_batch is ${value['next_batch']} but the state holds ${state['records'].length} records`;
  }
  return undefined;
}

function isMemoryState(value: unknown): boolean {
  if (!isVariableState(value) || !isRecord(value)) {
    return false;
  }
  const { labels, arrivals } = value;
  return Array.isArray(labels) && labels.every(isCount) && Array.isArray(arrivals) && arrivals.every(isCount);
}

function isVariableState(value: unknown): boolean {
  if (!isRecord(value) || !Array.isArray(value['shape']) || !Array.isArray(value['values'])) {
    return false;
  }
  return value['shape'].every(isCount) && value['values'].every((item) => typeof item === 'number' && Number.isFinite(item));
}

// Config keys that versions writing the same format_version did not have, with the value that their runs behaved as.
const KEYS_ADDED_LATER: Readonly<Record<string, unknown>> = { memory_size: 0 };

/**
 * Returns the first setting in which two identities differ, as `name`, the saved value and the current one,
 * or undefined when they are equal. Config settings are named `config.<key>`.
 */
export function findIdentityMismatch(
  saved: RunIdentity,
  current: RunIdentity,
): { readonly name: string; readonly saved: unknown; readonly current: unknown } | undefined {
  const configKeys = [...new Set([...Object.keys(current.config), ...Object.keys(saved.config)])];
  for (const key of configKeys) {
    const savedValue = key in saved.config ? saved.config[key] : KEYS_ADDED_LATER[key];
    if (JSON.stringify(savedValue) !== JSON.stringify(current.config[key])) {
      return { name: `config.${key}`, saved: savedValue, current: current.config[key] };
    }
  }
  const fields = ['dataset', 'dataset_fingerprint', 'corruption', 'severity', 'batch_size', 'max_samples', 'source_model'] as const;
  for (const field of fields) {
    if (JSON.stringify(saved[field]) !== JSON.stringify(current[field])) {
      return { name: field, saved: saved[field], current: current[field] };
    }
  }
  return undefined;
}

/** Raises an InputError naming the first setting in which the checkpoint's run differs from the current one. */
export function checkIdentity(file: string, saved: RunIdentity, current: RunIdentity): void {
  const mismatch = findIdentityMismatch(saved, current);
  if (mismatch === undefined) {
    return;
  }
  const key = mismatch.name.replace(/^config\./, '');
  if (mismatch.name.startsWith('config.') && !(key in saved.config)) {
    throw new InputError(
      `Checkpoint file ${file} comes from a version without the config key '${key}', whose runs behaved as ` +
        `${key} ${JSON.stringify(mismatch.saved)}, but this run has ${JSON.stringify(mismatch.current)}; add '${key}: ${JSON.stringify(mismatch.saved)}' to the config.`,
    );
  }
  throw new InputError(
    `Checkpoint file ${file} belongs to another run: its ${mismatch.name} is ${JSON.stringify(mismatch.saved)}, ` +
      `but this run has ${JSON.stringify(mismatch.current)}; resume with the flags and config of the interrupted run.`,
  );
}

/** The signals that make `run` stop after the current batch and write a checkpoint. */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Exit status of a run stopped by a signal: 128 + 2 (SIGINT), the shell's convention, also used for SIGTERM. */
export const EXIT_INTERRUPTED = 130;

/** A handler of SIGINT and SIGTERM that records the first signal instead of ending the process. */
export interface InterruptWatch {
  /** The first signal received, or undefined. */
  readonly signal: () => NodeJS.Signals | undefined;
  /** Removes the handlers, so that the signals end the process again. */
  readonly dispose: () => void;
}

/** Installs handlers for SIGINT and SIGTERM; `onSignal` is called once, for the first one. */
export function watchInterrupts(onSignal: (signal: NodeJS.Signals) => void = () => undefined): InterruptWatch {
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      received = signal;
      onSignal(signal);
    }
  };
  for (const signal of INTERRUPT_SIGNALS) {
    process.on(signal, handler);
  }
  return {
    signal: () => received,
    dispose: () => {
      for (const signal of INTERRUPT_SIGNALS) {
        process.off(signal, handler);
      }
    },
  };
}

/** Formats a command line for a POSIX shell, quoting arguments that contain anything but safe characters. */
export function formatCommandLine(args: readonly string[]): string {
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** Returns `args` without any --resume flag and its value, followed by `--resume file`. */
export function resumeArguments(args: readonly string[], file: string): string[] {
  const kept: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--resume') {
      index++;
    } else if (!arg.startsWith('--resume=')) {
      kept.push(arg);
    }
  }
  return [...kept, '--resume', file];
}
