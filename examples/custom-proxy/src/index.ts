import 'reflect-metadata';

import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { ConfidenceProxy } from './confidence-proxy.js';

/** Binds the proxy metric `confidence`; select it with `proxy: confidence` in a config. */
export const containerModule = new ContainerModule((options) => {
  bindPlugin(options, 'proxy', 'confidence', ConfidenceProxy);
});

export { ConfidenceProxy };

export default containerModule;
