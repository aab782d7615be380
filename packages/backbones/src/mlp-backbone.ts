import { inject, injectable, optional } from 'inversify';

import { ConfigId, type LayerSpec } from '@safe-metanet/core';

import { BackboneOptionsId, checkInteger, checkSeed, type BackboneOptions, type MlpSettings } from './backbone-settings.js';
import { FrozenBackbone, type BackboneStructure } from './frozen-backbone.js';

/**
 * A multilayer perceptron on `[batch, inputDim]` inputs: `numLayers` dense layers
 * `inputDim → hiddenDim → … → hiddenDim → outputDim`, ReLU after all but the last.
 */
@injectable()
export class MlpBackbone extends FrozenBackbone {
  constructor(@inject(ConfigId) settings: MlpSettings, @inject(BackboneOptionsId) @optional() options: BackboneOptions = {}) {
    super(describeMlp(settings, options));
  }
}

/** Builds an MLP backbone from config values. */
export function createMlpBackbone(settings: MlpSettings, options: BackboneOptions = {}): MlpBackbone {
  return new MlpBackbone(settings, options);
}

function describeMlp(settings: MlpSettings, options: BackboneOptions): BackboneStructure {
  checkInteger('num_layers', settings.numLayers, 2);
  checkInteger('hidden_dim', settings.hiddenDim, 1);
  checkInteger('input_dim', settings.inputDim, 1);
  checkInteger('output_dim', settings.outputDim, 2);
  checkSeed(settings.seed);

  const layers: LayerSpec[] = [];
  for (let index = 0; index < settings.numLayers; index++) {
    const last = index === settings.numLayers - 1;
    layers.push({
      name: `layer_${index}`,
      kind: 'dense',
      inputSize: index === 0 ? settings.inputDim : settings.hiddenDim,
      outputSize: last ? settings.outputDim : settings.hiddenDim,
      kernelSize: 1,
      strides: 1,
      padding: 'valid',
    });
  }

  return {
    kind: 'mlp',
    layers,
    inputShape: [settings.inputDim],
    decoder: options.decoder ?? false,
    decoderHiddenDim: settings.hiddenDim,
    seed: settings.seed,
  };
}
