import type { ServiceIdentifier } from 'inversify';

import type { AcceptancePolicy } from './acceptance-policy.js';
import type { AdapterFactory } from './adapter.js';
import type { Backbone } from './backbone.js';
import type { SafeMetaNetConfig } from './config.js';
import type { ExpansionSchedule } from './expansion-schedule.js';
import type { Logger } from './logger.js';
import type { ProxyMetric } from './proxy-metric.js';

/** The validated config of the run. */
export const ConfigId: ServiceIdentifier<SafeMetaNetConfig> = Symbol.for('@safe-metanet/core/Config');

/** The logger plugins write to. */
export const LoggerId: ServiceIdentifier<Logger> = Symbol.for('@safe-metanet/core/Logger');

/** Backbones, bound by name (`backbone`). */
export const BackboneId: ServiceIdentifier<Backbone> = Symbol.for('@safe-metanet/core/Backbone');

/** Adapter factories, bound by name (`adapter_type`). */
export const AdapterFactoryId: ServiceIdentifier<AdapterFactory> = Symbol.for('@safe-metanet/core/AdapterFactory');

/** Proxy metrics, bound by name (`proxy`). */
export const ProxyMetricId: ServiceIdentifier<ProxyMetric> = Symbol.for('@safe-metanet/core/ProxyMetric');

/** Acceptance policies, bound by name (`policy`). */
export const AcceptancePolicyId: ServiceIdentifier<AcceptancePolicy> = Symbol.for(
  '@safe-metanet/core/AcceptancePolicy',
);

/** Expansion schedules, bound by name (`expansion`). */
export const ExpansionScheduleId: ServiceIdentifier<ExpansionSchedule> = Symbol.for(
  '@safe-metanet/core/ExpansionSchedule',
);

/** Kinds of plugin the container resolves by config name. */
export type PluginKind = 'backbone' | 'adapter' | 'proxy' | 'policy' | 'expansion';

/** A registered plugin name, so that an unknown name can be reported with the valid ones. */
export interface PluginRegistration {
  /** The kind of plugin. */
  readonly kind: PluginKind;
  /** The config name it is bound under. */
  readonly name: string;
}

/** Every plugin name registered by the loaded modules. */
export const PluginRegistrationId: ServiceIdentifier<PluginRegistration> = Symbol.for(
  '@safe-metanet/core/PluginRegistration',
);
