import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { EntropyProxy } from './entropy-proxy.js';
import { ReconstructionProxy } from './reconstruction-proxy.js';

/** Binds the proxy metrics `entropy` and `reconstruction`. */
export const proxiesModule = new ContainerModule((options) => {
  bindPlugin(options, 'proxy', 'entropy', EntropyProxy);
  bindPlugin(options, 'proxy', 'reconstruction', ReconstructionProxy);
});
