import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { CnnBackbone } from './cnn-backbone.js';
import { MlpBackbone } from './mlp-backbone.js';

/** Binds the backbones `mlp` and `cnn`. Bind BackboneOptionsId as well to give them a decoder. */
export const backbonesModule = new ContainerModule((options) => {
  bindPlugin(options, 'backbone', 'mlp', MlpBackbone);
  bindPlugin(options, 'backbone', 'cnn', CnnBackbone);
});
