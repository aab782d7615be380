export {
  withinAnchorBounds,
  type AcceptancePolicy,
  type AnchorBounds,
  type GateDecision,
  type GateEvidence,
  type HeldOutMetrics,
  type RejectReason,
  type SourceDivergence,
} from './acceptance-policy.js';
export { BalancedMemory, smallMemoryWarning, type MemoryState, type MemoryUpdate } from './balanced-memory.js';
export { AllOfPolicy } from './all-of-policy.js';
export type { Adapter, AdapterFactory, AdapterOptions } from './adapter.js';
export { selectBackend, type ActiveBackend } from './backend.js';
export type { Backbone, BackboneOutput, ForwardOptions, FrozenLayerActivations, FrozenTrace, LayerAdapters, LayerKind, LayerSpec } from './backbone.js';
export {
  BACKENDS,
  CONFIG_KEYS,
  closestKey,
  defaultConfig,
  defaultExpansionSchedule,
  loadConfigFile,
  loadConfigSource,
  overrideConfig,
  parseConfig,
  parseConfigSource,
  PROTOTYPE_SETTINGS,
  resolveConfig,
  toSnakeCase,
  type BackendName,
  type ConfigSource,
  type SafeMetaNetConfig,
} from './config.js';
export {
  bindPlugin,
  buildContainer,
  buildSafeMetaNet,
  effectivePluginNames,
  resolvePlugin,
  resolvePolicy,
  type BuildOptions,
} from './container.js';
export {
  ConfigError,
  EXIT_FAILURE,
  EXIT_INVALID_INPUT,
  InputError,
  PluginError,
  PluginFailureError,
  SafeMetaNetError,
} from './errors.js';
export type { ExpansionSchedule } from './expansion-schedule.js';
export { LOG_LEVELS, silentLogger, StreamLogger, type Logger, type LogLevel } from './logger.js';
export type { ProxyInputs, ProxyMetric } from './proxy-metric.js';
export {
  finiteOrNull,
  JsonLinesWriter,
  summarizeRecords,
  type AttemptRecord,
  type RunRecord,
  type RunSummary,
} from './records.js';
export {
  accuracyOf,
  describeRecord,
  SafeMetaNet,
  type RunnerState,
  type SafeMetaNetParts,
  type VariableState,
} from './safe-metanet.js';
export {
  AcceptancePolicyId,
  AdapterFactoryId,
  BackboneId,
  ConfigId,
  ExpansionScheduleId,
  LoggerId,
  PluginRegistrationId,
  ProxyMetricId,
  type PluginKind,
  type PluginRegistration,
} from './service-ids.js';
export { registerWasmKernels } from './wasm-kernels.js';
