import {
  loadConfigSource,
  overrideConfig,
  resolveConfig,
  StreamLogger,
  type Logger,
  type SafeMetaNetConfig,
} from '@safe-metanet/core';

import { choiceFlag, integerFlag, stringFlag, type FlagSpecs, type FlagValues } from './flags.js';

/** Flags shared by every command that builds a Safe MetaNet runner. */
export const RUNNER_FLAGS: FlagSpecs = {
  config: { type: 'string', value: 'FILE', help: 'YAML config file (the keys of the README\'s Configuration table); flags override its values' },
  seed: { type: 'string', value: 'N', help: 'seed for weights, adapters and data (default 0)' },
  backbone: { type: 'string', value: 'NAME', help: 'backbone plugin: mlp or cnn (default mlp)' },
  adapter: { type: 'string', value: 'NAME', help: 'adapter plugin: lora or linear_adapter (default lora)' },
  backend: { type: 'string', value: 'NAME', help: 'tensor backend: auto, tensorflow, wasm or cpu (default auto)' },
  'disable-rollback': { type: 'boolean', help: 'ablation: accept every update (no rollback, no expansion; the reset mode still applies)' },
  'disable-scope-expansion': { type: 'boolean', help: 'ablation: keep the scope at the first scheduled layer' },
  'log-file': { type: 'string', value: 'FILE', help: 'write one JSON record per batch (JSON Lines) to FILE' },
  plugin: {
    type: 'string',
    multiple: true,
    value: 'NAME_OR_PATH',
    help: 'load a plugin package or module file exporting a ContainerModule (default or containerModule); repeatable',
  },
  verbose: { type: 'boolean', help: 'print stack traces with errors' },
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * Builds the config from the defaults, the --config file and the flags, in that order of precedence.
 * `commandDefaults` returns, for the config so far, settings that replace the general defaults
 * but not values that the file or a flag set.
 */
export function configFromFlags(
  values: FlagValues,
  commandDefaults: (config: SafeMetaNetConfig) => Record<string, unknown> = () => ({}),
): SafeMetaNetConfig {
  const file = stringFlag(values, 'config');
  const source = file === undefined ? { config: resolveConfig({}), keys: [] } : loadConfigSource(file);

  const overrides: Record<string, unknown> = {};
  const seed = integerFlag(values, 'seed', 0, 2 ** 31 - 1);
  if (seed !== undefined) {
    overrides['seed'] = seed;
  }
  const backbone = stringFlag(values, 'backbone');
  if (backbone !== undefined) {
    overrides['backbone'] = backbone;
  }
  const adapter = stringFlag(values, 'adapter');
  if (adapter !== undefined) {
    overrides['adapter_type'] = adapter;
  }
  const backend = choiceFlag(values, 'backend', ['auto', 'tensorflow', 'wasm', 'cpu'] as const);
  if (backend !== undefined) {
    overrides['backend'] = backend;
  }
  if (values['disable-rollback'] === true) {
    overrides['disable_rollback'] = true;
  }
  if (values['disable-scope-expansion'] === true) {
    overrides['disable_scope_expansion'] = true;
  }

  const config = overrideConfig(source.config, overrides);
  const defaults = Object.entries(commandDefaults(config)).filter(
    ([key]) => !source.keys.includes(key) && !(key in overrides),
  );
  return defaults.length === 0 ? config : overrideConfig(config, Object.fromEntries(defaults));
}

/** Creates the logger of a command: the config's level, writing to standard error. */
export function commandLogger(config: SafeMetaNetConfig): Logger {
  return new StreamLogger(config.logLevel);
}
