import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { EntropyProxy } from './entropy-proxy.js';
import { InfoMaxProxy } from './infomax-proxy.js';
import { ReconstructionProxy } from './reconstruction-proxy.js';

/** Binds the proxy metrics `entropy`, `infomax` and `reconstruction`. */
export const proxiesModule = new ContainerModule((options) => {
  bindPlugin(options, 'proxy', 'entropy', EntropyProxy);
  bindPlugin(options, 'proxy', 'infomax', InfoMaxProxy);
  bindPlugin(options, 'proxy', 'reconstruction', ReconstructionProxy);
});
