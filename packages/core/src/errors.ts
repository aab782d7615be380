/** Exit status for invalid input (config, flags, data), as the CLI reports it. */
export const EXIT_INVALID_INPUT = 2;

/** Exit status for any other failure. */
export const EXIT_FAILURE = 1;

/** Base class of every error Safe MetaNet raises on purpose; `code` identifies the concern. */
export class SafeMetaNetError extends Error {
  /** Stable machine-readable identifier of the error kind. */
  readonly code: string;

  /** Process exit status the CLI uses for this error. */
  readonly exitStatus: number;

  constructor(code: string, message: string, exitStatus: number, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitStatus = exitStatus;
  }
}

/** An invalid configuration value or key. */
export class ConfigError extends SafeMetaNetError {
  /** The snake_case config key at fault. */
  readonly key: string;

  constructor(key: string, message: string, options?: ErrorOptions) {
    super('invalid_config', message, EXIT_INVALID_INPUT, options);
    this.key = key;
  }
}

/** Invalid data: a tensor of the wrong shape, a corrupt file, labels that do not match a batch. */
export class InputError extends SafeMetaNetError {
  constructor(message: string, options?: ErrorOptions) {
    super('invalid_input', message, EXIT_INVALID_INPUT, options);
  }
}

/** A plugin name that no loaded module registered, or a module that cannot be loaded. */
export class PluginError extends SafeMetaNetError {
  constructor(message: string, options?: ErrorOptions) {
    super('invalid_plugin', message, EXIT_INVALID_INPUT, options);
  }
}

/** A plugin that threw while the loop was running it; the message names the plugin. */
export class PluginFailureError extends SafeMetaNetError {
  /** Config name of the plugin that threw. */
  readonly plugin: string;

  constructor(plugin: string, message: string, options?: ErrorOptions) {
    super('plugin_failed', message, EXIT_FAILURE, options);
    this.plugin = plugin;
  }
}
