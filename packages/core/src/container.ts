import 'reflect-metadata';

import { Container, type ContainerModule, type ContainerModuleLoadOptions, type Newable, type ServiceIdentifier } from 'inversify';

import type { AcceptancePolicy } from './acceptance-policy.js';
import { AllOfPolicy } from './all-of-policy.js';
import type { Backbone } from './backbone.js';
import type { SafeMetaNetConfig } from './config.js';
import { ConfigError, PluginError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import { SafeMetaNet } from './safe-metanet.js';
import {
  AcceptancePolicyId,
  AdapterFactoryId,
  BackboneId,
  ConfigId,
  ExpansionScheduleId,
  LoggerId,
  PluginRegistrationId,
  ProxyMetricId,
  type PluginKind,
} from './service-ids.js';

const SERVICE_IDS = {
  backbone: BackboneId,
  adapter: AdapterFactoryId,
  proxy: ProxyMetricId,
  policy: AcceptancePolicyId,
  expansion: ExpansionScheduleId,
} as const;

type ServiceOf<K extends PluginKind> = (typeof SERVICE_IDS)[K] extends ServiceIdentifier<infer T> ? T : never;

/**
 * Binds a plugin class under its config name and registers the name, so that the container can list it.
 * Call it from a plugin package's ContainerModule.
 */
export function bindPlugin<K extends PluginKind>(
  options: ContainerModuleLoadOptions,
  kind: K,
  name: string,
  implementation: Newable<ServiceOf<K>>,
): void {
  const id = SERVICE_IDS[kind] as ServiceIdentifier<ServiceOf<K>>;
  options.bind(id).to(implementation).inSingletonScope().whenNamed(name);
  options.bind(PluginRegistrationId).toConstantValue({ kind, name });
}

/** Inputs of buildSafeMetaNet. */
export interface BuildOptions {
  /** The validated config; plugins are picked by its names. */
  readonly config: SafeMetaNetConfig;
  /** Plugin modules to load, such as the standard plugins' and a user's own. */
  readonly modules: readonly ContainerModule[];
  /** Logger for the loop and the plugins; silent when absent. */
  readonly logger?: Logger;
  /** A backbone to adapt (a trained source model) in place of a new one from the `backbone` plugin. */
  readonly backbone?: Backbone;
}

/** Returns the plugin names each kind resolves to, after the ablation flags. */
export function effectivePluginNames(config: SafeMetaNetConfig): Record<PluginKind, string> {
  return {
    backbone: config.backbone,
    adapter: config.adapterType,
    proxy: config.proxy,
    policy: config.disableRollback ? 'always_accept' : config.policy,
    expansion: config.disableScopeExpansion ? 'fixed' : config.expansion,
  };
}

/** Builds the plugin container for a config. */
export function buildContainer(config: SafeMetaNetConfig, modules: readonly ContainerModule[], logger: Logger): Container {
  const container = new Container();
  container.bind(ConfigId).toConstantValue(config);
  container.bind(LoggerId).toConstantValue(logger);
  container.load(...modules);
  return container;
}

/** Resolves the plugin of `kind` named `name`; an unknown name raises an error listing the registered ones. */
export function resolvePlugin<K extends PluginKind>(container: Container, kind: K, name: string): ServiceOf<K> {
  const registered = container
    .getAll(PluginRegistrationId)
    .filter((registration) => registration.kind === kind)
    .map((registration) => registration.name);
  if (!registered.includes(name)) {
    const key = KEY_OF_KIND[kind];
    const valid = registered.length === 0 ? 'none (load a plugin module that provides one)' : registered.join(', ');
    const listHint = kind === 'policy' && name.includes(',') ? ' To require several policies, write a YAML list such as [threshold, source_anchor].' : '';
    throw new PluginError(`Unknown ${kind} '${name}' (config key '${key}'). Registered ${kind} names: ${valid}.${listHint}`);
  }
  return container.get(SERVICE_IDS[kind] as ServiceIdentifier<ServiceOf<K>>, { name });
}

const KEY_OF_KIND: Record<PluginKind, string> = {
  backbone: 'backbone',
  adapter: 'adapter_type',
  proxy: 'proxy',
  policy: 'policy',
  expansion: 'expansion',
};

/** Resolves a policy name, or several joined with `+`, which then must all accept. */
export function resolvePolicy(container: Container, names: string): AcceptancePolicy {
  const policies = names.split('+').map((name) => resolvePlugin(container, 'policy', name.trim()));
  if (policies.length === 1) {
    return policies[0] as AcceptancePolicy;
  }
  return new AllOfPolicy(policies);
}

/** Builds a ready runner from a config and plugin modules. */
export function buildSafeMetaNet(options: BuildOptions): SafeMetaNet {
  const logger = options.logger ?? silentLogger;
  const container = buildContainer(options.config, options.modules, logger);
  const names = effectivePluginNames(options.config);

  const adapterFactory = resolvePlugin(container, 'adapter', names.adapter);
  const proxy = resolvePlugin(container, 'proxy', names.proxy);
  const policy = resolvePolicy(container, names.policy);
  const schedule = resolvePlugin(container, 'expansion', names.expansion);
  const backbone = options.backbone ?? resolvePlugin(container, 'backbone', names.backbone);

  if (proxy.requiresDecoder && !backbone.hasDecoder) {
    throw new ConfigError(
      'proxy',
      `Invalid value for 'proxy': '${proxy.name}' needs a backbone with a decoder head, and this '${backbone.kind}' ` +
        'backbone has none. Use a source model saved by safe-metanet train, which has one, or choose a proxy without a decoder: infomax or entropy.',
    );
  }

  return new SafeMetaNet({ config: options.config, backbone, adapterFactory, proxy, policy, schedule, logger });
}
