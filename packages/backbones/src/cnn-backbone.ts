import * as tf from '@tensorflow/tfjs';
import { inject, injectable, optional } from 'inversify';

import { ConfigId, type LayerSpec } from '@safe-metanet/core';

import { BackboneOptionsId, checkInteger, checkSeed, type BackboneOptions, type CnnSettings } from './backbone-settings.js';
import { FrozenBackbone, type BackboneStructure } from './frozen-backbone.js';

/** Smallest feature-map side a 2x2 max-pool may produce. A map whose pooled side would be smaller stays unpooled. */
const MIN_POOLED_SIZE = 4;

interface CnnPlan {
  readonly structure: BackboneStructure;
  /** Whether a 2x2 max-pool follows conv layer `i`. */
  readonly pools: readonly boolean[];
}

/**
 * A convolutional classifier on NHWC images `[batch, imageSize, imageSize, imageChannels]`.
 * Layers `layer_0 … layer_{n-2}` are 3x3 `same` convolutions with `hiddenDim` filters each. The
 * width is constant, so `hidden_dim` means the same for every conv layer. Each conv layer is
 * followed by ReLU and, while the pooled side stays at least 4 pixels, by a 2x2 max-pool with
 * stride 2 (28 → 14 → 7, then no more pooling). Pooling uses `valid` padding, so an odd side drops
 * its last row and column. The last feature map is flattened in NHWC order into the dense layer
 * `layer_{n-1}` that outputs the logits.
 */
@injectable()
export class CnnBackbone extends FrozenBackbone {
  readonly #pools: readonly boolean[];

  constructor(@inject(ConfigId) settings: CnnSettings, @inject(BackboneOptionsId) @optional() options: BackboneOptions = {}) {
    const plan = planCnn(settings, options);
    super(plan.structure);
    this.#pools = plan.pools;
  }

  protected override afterActivation(index: number, activation: tf.Tensor): tf.Tensor {
    return this.#pools[index] === true ? tf.maxPool(activation as tf.Tensor4D, 2, 2, 'valid') : activation;
  }
}

/** Builds a CNN backbone from config values. */
export function createCnnBackbone(settings: CnnSettings, options: BackboneOptions = {}): CnnBackbone {
  return new CnnBackbone(settings, options);
}

function planCnn(settings: CnnSettings, options: BackboneOptions): CnnPlan {
  checkInteger('num_layers', settings.numLayers, 2);
  checkInteger('hidden_dim', settings.hiddenDim, 1);
  checkInteger('image_size', settings.imageSize, 1);
  checkInteger('image_channels', settings.imageChannels, 1);
  checkInteger('output_dim', settings.outputDim, 2);
  checkSeed(settings.seed);

  const layers: LayerSpec[] = [];
  const pools: boolean[] = [];
  let channels = settings.imageChannels;
  let side = settings.imageSize;
  for (let index = 0; index < settings.numLayers - 1; index++) {
    layers.push({
      name: `layer_${index}`,
      kind: 'conv2d',
      inputSize: channels,
      outputSize: settings.hiddenDim,
      kernelSize: 3,
      strides: 1,
      padding: 'same',
    });
    channels = settings.hiddenDim;

    const pool = Math.floor(side / 2) >= MIN_POOLED_SIZE;
    pools.push(pool);
    if (pool) {
      side = Math.floor(side / 2);
    }
  }

  const lastIndex = settings.numLayers - 1;
  layers.push({
    name: `layer_${lastIndex}`,
    kind: 'dense',
    inputSize: side * side * channels,
    outputSize: settings.outputDim,
    kernelSize: 1,
    strides: 1,
    padding: 'valid',
  });

  const structure: BackboneStructure = {
    kind: 'cnn',
    layers,
    inputShape: [settings.imageSize, settings.imageSize, settings.imageChannels],
    decoder: options.decoder ?? false,
    decoderHiddenDim: settings.hiddenDim,
    seed: settings.seed,
  };
  return { structure, pools };
}
