import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { BottleneckAdapterFactory } from './bottleneck-adapter.js';
import { LoraAdapterFactory } from './lora-adapter.js';

/** Binds the adapter factories under their `adapter_type` names: `lora` and `linear_adapter`. */
export const adaptersModule = new ContainerModule((options) => {
  bindPlugin(options, 'adapter', 'lora', LoraAdapterFactory);
  bindPlugin(options, 'adapter', 'linear_adapter', BottleneckAdapterFactory);
});
