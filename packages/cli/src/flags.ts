import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError } from './usage-error.js';

/** One flag of a command: its type, default and help line. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** Whether the flag may be given more than once; its value is then the list of every occurrence. */
  readonly multiple?: boolean;
  /** Help text: what the flag sets, with its unit and default. */
  readonly help: string;
  /** Placeholder shown in the help, such as N or FILE. */
  readonly value?: string;
}

/** Flags by their long name, without the leading dashes. */
export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** Parsed flag values by long name. */
export type FlagValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

/** Parses a command's flags strictly; an unknown flag or a stray argument is a UsageError listing the valid flags. */
export function parseFlags(command: string, args: readonly string[], specs: FlagSpecs): FlagValues {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.multiple === true ? { type: spec.type, multiple: true } : { type: spec.type };
  }

  try {
    const { values } = parseArgs({ args: joinNegativeNumbers(args, specs), options, strict: true, allowPositionals: false });
    return values as FlagValues;
  } catch (error) {
    // Node's messages may span lines and may end with a hint about positional arguments, which no command takes.
    const message = error instanceof Error ? error.message : String(error);
    const reason = message.replace(/\s*To specify a positional.*$/s, '').replace(/\s+/g, ' ').trim();
    const sentence = /[.?!]$/.test(reason) ? reason : `${reason}.`;
    const valid = Object.keys(specs)
      .map((name) => `--${name}`)
      .join(', ');
    throw new UsageError(`Invalid arguments for '${command}': ${sentence} Valid flags: ${valid}.`);
  }
}

/**
 * Joins a string flag and a following negative number into `--name=value`. parseArgs rejects
 * `--batch-size -1` as ambiguous without naming the value, and after the join the flag's own range
 * check rejects -1 with a message that does name it.
 */
function joinNegativeNumbers(args: readonly string[], specs: FlagSpecs): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    const next = args[index + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : '';
    if (Object.hasOwn(specs, name) && specs[name]?.type === 'string' && next !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/** Reads an integer flag, checking its range; absent gives undefined. */
export function integerFlag(values: FlagValues, name: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = values[name];
  if (raw === undefined) {
    return undefined;
  }
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(value) || value < minimum || value > maximum) {
    const range = maximum === Number.MAX_SAFE_INTEGER ? `an integer of at least ${minimum}` : `an integer from ${minimum} to ${maximum}`;
    throw new UsageError(`Invalid value for --${name}: ${JSON.stringify(raw)}; expected ${range}.`);
  }
  return value;
}

/** Reads a string flag that must be one of `allowed`; absent gives undefined. */
export function choiceFlag<T extends string>(values: FlagValues, name: string, allowed: readonly T[]): T | undefined {
  const raw = values[name];
  if (raw === undefined) {
    return undefined;
  }
  if (typeof raw !== 'string' || !allowed.includes(raw as T)) {
    throw new UsageError(`Invalid value for --${name}: ${JSON.stringify(raw)}; allowed: ${allowed.join(', ')}.`);
  }
  return raw as T;
}

/** Reads a string flag; absent gives undefined. */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const raw = values[name];
  if (raw === undefined) {
    return undefined;
  }
  if (typeof raw !== 'string' || raw.length === 0) {
    throw new UsageError(`Invalid value for --${name}: expected a non-empty value.`);
  }
  return raw;
}

/** Reads a repeatable string flag (`multiple: true`); absent gives an empty list. */
export function stringListFlag(values: FlagValues, name: string): string[] {
  const raw = values[name];
  if (raw === undefined) {
    return [];
  }
  const items = typeof raw === 'string' ? [raw] : raw;
  if (typeof items === 'boolean' || items.some((item) => item.length === 0)) {
    throw new UsageError(`Invalid value for --${name}: expected a non-empty value.`);
  }
  return [...items];
}

/** Formats a command's flags as help lines. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `  --${name}${spec.value === undefined ? '' : ` ${spec.value}`}`;
    return [left, spec.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, help]) => `${left.padEnd(width)}${help}`).join('\n');
}
