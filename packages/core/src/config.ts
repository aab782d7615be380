import { readFileSync } from 'node:fs';

import yaml from 'js-yaml';

import { ConfigError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';

/** Tensor backends Safe MetaNet can run on; `auto` picks the first that loads of tensorflow, wasm, cpu. */
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

/** One of BACKENDS. */
export type BackendName = (typeof BACKENDS)[number];

/** Settings of a Safe MetaNet run, in the camelCase of the TypeScript API. */
export interface SafeMetaNetConfig {
  /** Backbone plugin name (`mlp`, `cnn`, or a plugin's). Default `mlp`. */
  readonly backbone: string;
  /** Hidden width: MLP units or CNN channels. Default 64. */
  readonly hiddenDim: number;
  /** Number of backbone layers, at least 2. Default 3. */
  readonly numLayers: number;
  /** Input features of the MLP. Default 32. */
  readonly inputDim: number;
  /** Image side in pixels for the CNN (square images). Default 28. */
  readonly imageSize: number;
  /** Image channels for the CNN. Default 1. */
  readonly imageChannels: number;
  /** Number of classes. Default 10. */
  readonly outputDim: number;
  /** Adapter plugin name (`lora`, `linear_adapter`). Default `lora`. */
  readonly adapterType: string;
  /** LoRA rank. Default 4. */
  readonly loraRank: number;
  /** LoRA alpha; the LoRA delta is scaled by alpha / rank. Default: the rank, so the scale is 1. */
  readonly loraAlpha: number;
  /** Bottleneck width of the linear adapter. Default 8. */
  readonly adapterBottleneck: number;
  /** Adam learning rate of the adapters. Default 1e-3. */
  readonly lr: number;
  /** Gradient steps per attempt. Default 1. */
  readonly numSteps: number;
  /** Weight of the L2 trust-region penalty on adapter parameters. Default 0.01. */
  readonly trustRegionLambda: number;
  /** `absolute` penalises the parameters themselves, `from_snapshot` their distance from the last snapshot. */
  readonly trustRegion: 'absolute' | 'from_snapshot';
  /** Minimum decrease of the proxy metric for the threshold policy to accept. Default 0. */
  readonly rollbackThreshold: number;
  /** Layers in the order they join the scope. Default: last layer to first. */
  readonly expansionSchedule: readonly string[];
  /** Ablation: accept every update (policy `always_accept`). Default false. */
  readonly disableRollback: boolean;
  /** Ablation: keep the scope at the first scheduled layer (expansion `fixed`). Default false. */
  readonly disableScopeExpansion: boolean;
  /** Proxy metric plugin name. Default `infomax`; the prototype used `entropy`. */
  readonly proxy: string;
  /** Acceptance policy plugin name, or several joined with `+`, which must all accept. Default `threshold+source_anchor`; the prototype used `threshold`. */
  readonly policy: string;
  /** Share of each batch held out from training and used only to judge the update, in [0, 0.9]. Default 0. */
  readonly holdoutFraction: number;
  /**
   * Recent test samples kept in a memory balanced over the frozen model's predicted classes. When above 0, the
   * adapters train on this memory after each batch joins it, and the proxy metric is measured on it; 0 turns the memory off. Default 128.
   */
  readonly memorySize: number;
  /** Minimum share of samples on which the adapted and the frozen model predict the same class (source_anchor and on_drift). Default 0.95. */
  readonly anchorMinAgreement: number;
  /** Maximum mean KL divergence from the frozen model's predictions to the adapted model's, in nats (source_anchor). Default 0.5. */
  readonly anchorMaxKl: number;
  /**
   * When adapters go back to zero delta and the scope to its first layer: none, episodic, periodic, on_collapse, or
   * on_drift (when, on a new batch, the kept adapters break the source_anchor bounds). Default `on_drift`.
   */
  readonly reset: 'none' | 'episodic' | 'periodic' | 'on_collapse' | 'on_drift';
  /** Batches between resets in `periodic` mode. Default 50. */
  readonly resetEvery: number;
  /** Reset in `on_collapse` mode when the entropy of the running mean prediction falls below this share of ln(classes). Default 0.5. */
  readonly collapseThreshold: number;
  /** Expansion schedule plugin name. Default `layer_by_layer`. */
  readonly expansion: string;
  /** Prediction a batch reports: after its accepted update, or before any update. Default `after_update`. */
  readonly prediction: 'after_update' | 'before_update';
  /** Seed for weights, adapters and data. Default 0. */
  readonly seed: number;
  /** Tensor backend. Default `auto`. */
  readonly backend: BackendName;
  /** Logging level. Default `INFO`. */
  readonly logLevel: LogLevel;
}

/** Largest `memory_size`: the memory is traced and trained on at every step, so its size bounds a step's cost. */
const MAX_MEMORY_SIZE = 4096;

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'string_list' | 'string_or_list';

interface KeySpec {
  readonly camel: keyof SafeMetaNetConfig;
  readonly kind: Kind;
  readonly allowed?: readonly string[];
  /** Smallest allowed value, inclusive. */
  readonly min?: number;
  /** When true, `min` itself is not allowed. */
  readonly exclusiveMin?: boolean;
  /** Largest allowed value, inclusive. */
  readonly max?: number;
}

// The snake_case keys of the YAML file. The first block is the Python prototype's, with its defaults.
const KEYS: Readonly<Record<string, KeySpec>> = {
  backbone: { camel: 'backbone', kind: 'string' },
  hidden_dim: { camel: 'hiddenDim', kind: 'integer', min: 1 },
  num_layers: { camel: 'numLayers', kind: 'integer', min: 2 },
  input_dim: { camel: 'inputDim', kind: 'integer', min: 1 },
  output_dim: { camel: 'outputDim', kind: 'integer', min: 2 },
  adapter_type: { camel: 'adapterType', kind: 'string' },
  lora_rank: { camel: 'loraRank', kind: 'integer', min: 1 },
  adapter_bottleneck: { camel: 'adapterBottleneck', kind: 'integer', min: 1 },
  lr: { camel: 'lr', kind: 'number', min: 0, exclusiveMin: true },
  num_steps: { camel: 'numSteps', kind: 'integer', min: 1 },
  trust_region_lambda: { camel: 'trustRegionLambda', kind: 'number', min: 0 },
  rollback_threshold: { camel: 'rollbackThreshold', kind: 'number' },
  expansion_schedule: { camel: 'expansionSchedule', kind: 'string_list' },
  disable_rollback: { camel: 'disableRollback', kind: 'boolean' },
  disable_scope_expansion: { camel: 'disableScopeExpansion', kind: 'boolean' },
  log_level: { camel: 'logLevel', kind: 'string', allowed: LOG_LEVELS },
  image_size: { camel: 'imageSize', kind: 'integer', min: 4 },
  image_channels: { camel: 'imageChannels', kind: 'integer', min: 1 },
  lora_alpha: { camel: 'loraAlpha', kind: 'number', min: 0, exclusiveMin: true },
  trust_region: { camel: 'trustRegion', kind: 'string', allowed: ['absolute', 'from_snapshot'] },
  proxy: { camel: 'proxy', kind: 'string' },
  policy: { camel: 'policy', kind: 'string_or_list' },
  holdout_fraction: { camel: 'holdoutFraction', kind: 'number', min: 0, max: 0.9 },
  memory_size: { camel: 'memorySize', kind: 'integer', min: 0, max: MAX_MEMORY_SIZE },
  anchor_min_agreement: { camel: 'anchorMinAgreement', kind: 'number', min: 0, max: 1 },
  anchor_max_kl: { camel: 'anchorMaxKl', kind: 'number', min: 0 },
  reset: { camel: 'reset', kind: 'string', allowed: ['none', 'episodic', 'periodic', 'on_collapse', 'on_drift'] },
  reset_every: { camel: 'resetEvery', kind: 'integer', min: 1 },
  collapse_threshold: { camel: 'collapseThreshold', kind: 'number', min: 0, max: 1 },
  expansion: { camel: 'expansion', kind: 'string' },
  prediction: { camel: 'prediction', kind: 'string', allowed: ['after_update', 'before_update'] },
  seed: { camel: 'seed', kind: 'integer', min: 0 },
  backend: { camel: 'backend', kind: 'string', allowed: BACKENDS },
};

/** The snake_case keys a config file may contain. */
export const CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

/** Default values of the keys that do not depend on other keys. */
const FIXED_DEFAULTS = {
  backbone: 'mlp',
  hiddenDim: 64,
  numLayers: 3,
  inputDim: 32,
  imageSize: 28,
  imageChannels: 1,
  outputDim: 10,
  adapterType: 'lora',
  loraRank: 4,
  adapterBottleneck: 8,
  lr: 1e-3,
  numSteps: 1,
  trustRegionLambda: 0.01,
  trustRegion: 'absolute',
  rollbackThreshold: 0,
  disableRollback: false,
  disableScopeExpansion: false,
  proxy: 'infomax',
  policy: 'threshold+source_anchor',
  holdoutFraction: 0,
  memorySize: 128,
  anchorMinAgreement: 0.95,
  anchorMaxKl: 0.5,
  reset: 'on_drift',
  resetEvery: 50,
  collapseThreshold: 0.5,
  expansion: 'layer_by_layer',
  prediction: 'after_update',
  seed: 0,
  backend: 'auto',
  logLevel: 'INFO',
} as const satisfies Partial<SafeMetaNetConfig>;

/** Returns the default schedule for a model of `numLayers` layers: from the last layer to the first. */
export function defaultExpansionSchedule(numLayers: number): string[] {
  const schedule: string[] = [];
  for (let index = numLayers - 1; index >= 0; index--) {
    schedule.push(`layer_${index}`);
  }
  return schedule;
}

/**
 * Settings that give the Python prototype's step: the entropy proxy, the threshold gate alone and no reset.
 * The defaults differ from the prototype only in these keys, which it did not have.
 */
export const PROTOTYPE_SETTINGS = { proxy: 'entropy', policy: 'threshold', reset: 'none', memory_size: 0 } as const;

/** Returns the full default config: the Python prototype's values for its keys, and the recommended proxy, policy and reset. */
export function defaultConfig(): SafeMetaNetConfig {
  return resolveConfig({});
}

/**
 * Validates snake_case settings (a parsed YAML file, CLI overrides) and fills in the defaults.
 * Throws a ConfigError naming the key, the value, what is allowed and, for an unknown key, the closest valid one.
 */
export function resolveConfig(raw: unknown): SafeMetaNetConfig {
  if (raw === null || raw === undefined) {
    raw = {};
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('(root)', `Invalid config: expected a mapping of keys to values, got ${describe(raw)}.`);
  }

  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = KEYS[key];
    if (spec === undefined) {
      throw unknownKey(key);
    }
    values[spec.camel] = checkValue(key, spec, value);
  }

  const numLayers = (values['numLayers'] as number | undefined) ?? FIXED_DEFAULTS.numLayers;
  const loraRank = (values['loraRank'] as number | undefined) ?? FIXED_DEFAULTS.loraRank;
  const config = {
    ...FIXED_DEFAULTS,
    expansionSchedule: defaultExpansionSchedule(numLayers),
    loraAlpha: loraRank,
    ...values,
  } as SafeMetaNetConfig;

  checkSchedule(config.expansionSchedule);
  return config;
}

/** Merges settings over a config; `overrides` uses snake_case keys and is validated like a file. */
export function overrideConfig(config: SafeMetaNetConfig, overrides: Record<string, unknown>): SafeMetaNetConfig {
  const merged: Record<string, unknown> = { ...toSnakeCase(config), ...overrides };

  // A changed rank or layer count must move the defaults that follow from it, unless they were set.
  if ('lora_rank' in overrides && !('lora_alpha' in overrides) && config.loraAlpha === config.loraRank) {
    delete merged['lora_alpha'];
  }
  if (
    'num_layers' in overrides &&
    !('expansion_schedule' in overrides) &&
    sameList(config.expansionSchedule, defaultExpansionSchedule(config.numLayers))
  ) {
    delete merged['expansion_schedule'];
  }
  return resolveConfig(merged);
}

/** A validated config and the snake_case keys its file set, as opposed to the defaulted ones. */
export interface ConfigSource {
  readonly config: SafeMetaNetConfig;
  /** Keys present in the file. */
  readonly keys: readonly string[];
}

/** Parses YAML text into a validated config and its keys; `source` names the file in error messages. */
export function parseConfigSource(text: string, source = 'config'): ConfigSource {
  let raw: unknown;
  try {
    raw = yaml.load(text, { filename: source });
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const line = error.mark.line + 1;
      const column = error.mark.column + 1;
      throw new ConfigError(
        '(yaml)',
        `Invalid YAML in ${source} at line ${line}, column ${column}: ${error.reason}. Fix the syntax there.`,
        { cause: error },
      );
    }
    throw error;
  }
  const config = resolveConfig(raw);
  const keys = raw !== null && typeof raw === 'object' ? Object.keys(raw) : [];
  return { config, keys };
}

/** Parses YAML text into a validated config; `source` names the file in error messages. */
export function parseConfig(text: string, source = 'config'): SafeMetaNetConfig {
  return parseConfigSource(text, source).config;
}

/** Reads and validates a YAML config file, returning the config and the keys the file set. */
export function loadConfigSource(path: string): ConfigSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(error);
    throw new ConfigError('(file)', `Cannot read config file ${path}: ${reason}. Check the --config path.`, {
      cause: error,
    });
  }
  return parseConfigSource(text, path);
}

/** Reads and validates a YAML config file. */
export function loadConfigFile(path: string): SafeMetaNetConfig {
  return loadConfigSource(path).config;
}

/** Converts a config to its snake_case YAML layout. */
export function toSnakeCase(config: SafeMetaNetConfig): Record<string, unknown> {
  const snake: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(KEYS)) {
    const value = config[spec.camel];
    snake[key] = Array.isArray(value) ? [...value] : value;
  }
  return snake;
}

// Names other tools use for some keys, so that the hint points at the right key where spelling alone would not.
const KEY_ALIASES: Readonly<Record<string, string>> = {
  learning_rate: 'lr',
  steps: 'num_steps',
  layers: 'num_layers',
  rank: 'lora_rank',
  alpha: 'lora_alpha',
  bottleneck: 'adapter_bottleneck',
  threshold: 'rollback_threshold',
  lambda: 'trust_region_lambda',
  schedule: 'expansion_schedule',
  adapter: 'adapter_type',
};

/** Returns the valid key closest to `key`: a known alias, else the smallest edit distance. */
export function closestKey(key: string, candidates: readonly string[] = CONFIG_KEYS): string | undefined {
  const alias = KEY_ALIASES[key.toLowerCase().replace(/-/g, '_')];
  if (alias !== undefined && candidates.includes(alias)) {
    return alias;
  }

  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function unknownKey(key: string): ConfigError {
  const closest = closestKey(key);
  const hint = closest === undefined ? '' : ` Did you mean '${closest}'?`;
  return new ConfigError(key, `Unknown config key '${key}'.${hint} Valid keys: ${CONFIG_KEYS.join(', ')}.`);
}

function checkValue(key: string, spec: KeySpec, value: unknown): unknown {
  switch (spec.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') {
        throw typeError(key, value, 'a boolean (true or false)');
      }
      return value;
    case 'string':
      return checkString(key, spec, value);
    case 'string_or_list':
      // A list of plugin names is stored joined with '+', the form the container splits again.
      if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item.length > 0)) {
        return (value as string[]).join('+');
      }
      if (typeof value === 'string' && value.length > 0) {
        return value;
      }
      throw typeError(key, value, 'a name or a non-empty list of names');
    case 'string_list':
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
        throw typeError(key, value, 'a list of layer names such as [layer_2, layer_1, layer_0]');
      }
      return [...(value as string[])];
    case 'integer':
    case 'number':
      return checkNumber(key, spec, value);
  }
}

function checkString(key: string, spec: KeySpec, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    const expected = spec.allowed === undefined ? 'a non-empty string' : `one of ${spec.allowed.join(', ')}`;
    throw typeError(key, value, expected);
  }
  if (spec.allowed !== undefined && !spec.allowed.includes(value)) {
    throw new ConfigError(key, `Invalid value for '${key}': ${JSON.stringify(value)}; allowed: ${spec.allowed.join(', ')}.`);
  }
  return value;
}

function checkNumber(key: string, spec: KeySpec, value: unknown): number {
  const range = rangeOf(spec);
  const expected = `${spec.kind === 'integer' ? 'an integer' : 'a number'}${range}`;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw typeError(key, value, `a finite ${expected.replace(/^an? /, '')}`);
  }
  if (spec.kind === 'integer' && !Number.isInteger(value)) {
    throw typeError(key, value, expected);
  }
  if (spec.max !== undefined && value > spec.max) {
    throw new ConfigError(key, `Invalid value for '${key}': ${value}; it must be at most ${spec.max}.`);
  }
  if (spec.min !== undefined) {
    const tooSmall = spec.exclusiveMin === true ? value <= spec.min : value < spec.min;
    if (tooSmall) {
      const bound = spec.exclusiveMin === true ? `greater than ${spec.min}` : `at least ${spec.min}`;
      throw new ConfigError(key, `Invalid value for '${key}': ${value}; it must be ${bound}.`);
    }
  }
  return value;
}

function checkSchedule(schedule: readonly string[]): void {
  if (schedule.length === 0) {
    throw new ConfigError('expansion_schedule', "Invalid value for 'expansion_schedule': []; list at least one layer.");
  }
  const seen = new Set<string>();
  for (const layer of schedule) {
    if (seen.has(layer)) {
      throw new ConfigError(
        'expansion_schedule',
        `Invalid value for 'expansion_schedule': layer '${layer}' is listed twice; list each layer once.`,
      );
    }
    seen.add(layer);
  }
}

// Describes the allowed range of a number key, with a leading space, or returns '' for an unbounded key.
function rangeOf(spec: KeySpec): string {
  if (spec.min === undefined) {
    return spec.max === undefined ? '' : ` of at most ${spec.max}`;
  }
  if (spec.exclusiveMin === true) {
    return spec.max === undefined ? ` greater than ${spec.min}` : ` greater than ${spec.min} and at most ${spec.max}`;
  }
  return spec.max === undefined ? ` of at least ${spec.min}` : ` from ${spec.min} to ${spec.max}`;
}

function typeError(key: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(key, `Invalid value for '${key}': ${describe(value)}; expected ${expected}.`);
}

function describe(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return `a list ${JSON.stringify(value)}`;
  }
  if (typeof value === 'object') {
    return `a mapping ${JSON.stringify(value)}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // JSON writes NaN and the infinities as null, which would hide the value.
    return `number ${String(value)}`;
  }
  return `${typeof value} ${JSON.stringify(value) ?? String(value)}`;
}

function sameList(left: readonly string[], right: readonly string[]): boolean {
  return left.length === right.length && left.every((item, index) => item === right[index]);
}

function editDistance(left: string, right: string): number {
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index);
  for (let i = 1; i <= left.length; i++) {
    const current = [i];
    for (let j = 1; j <= right.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (left[i - 1] === right[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[right.length] ?? 0;
}
