import 'reflect-metadata';

import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';

import { ConfigId, PluginRegistrationId, ProxyMetricId, resolveConfig } from '@safe-metanet/core';

import { EntropyProxy } from './entropy-proxy.js';
import { InfoMaxProxy } from './infomax-proxy.js';
import { proxiesModule } from './proxies-module.js';
import { ReconstructionProxy } from './reconstruction-proxy.js';

describe('proxiesModule', () => {
  it('binds every proxy by name', () => {
    const container = new Container();
    container.bind(ConfigId).toConstantValue(resolveConfig({}));
    container.load(proxiesModule);

    expect(container.get(ProxyMetricId, { name: 'entropy' })).toBeInstanceOf(EntropyProxy);
    expect(container.get(ProxyMetricId, { name: 'reconstruction' })).toBeInstanceOf(ReconstructionProxy);
    expect(container.get(ProxyMetricId, { name: 'infomax' })).toBeInstanceOf(InfoMaxProxy);
    expect(container.getAll(PluginRegistrationId)).toEqual([
      { kind: 'proxy', name: 'entropy' },
      { kind: 'proxy', name: 'infomax' },
      { kind: 'proxy', name: 'reconstruction' },
    ]);
  });
});
