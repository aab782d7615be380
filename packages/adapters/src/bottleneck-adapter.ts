import * as tf from '@tensorflow/tfjs';
import { inject, injectable } from 'inversify';

import {
  ConfigError,
  ConfigId,
  defaultConfig,
  type Adapter,
  type AdapterFactory,
  type AdapterOptions,
  type LayerSpec,
  type SafeMetaNetConfig,
} from '@safe-metanet/core';

import { checkSeed, createAdapterVariable, seededUniform } from './adapter-variables.js';
import { checkFrozenOutput, checkLayerSpec } from './layer-shapes.js';

const TYPE = 'linear_adapter';

/** The config values a bottleneck factory reads. */
export type BottleneckSettings = Pick<SafeMetaNetConfig, 'adapterBottleneck'>;

/** Width and seed of one bottleneck adapter. */
export interface BottleneckAdapterOptions {
  /** Hidden width between the down and up projections. */
  readonly bottleneck: number;
  /** Seed of the random down projection. */
  readonly seed: number;
}

/**
 * Bottleneck adapter on the layer's pre-activation output:
 * delta = relu(frozenOutput · down + downBias) · up + upBias, applied on the channel axis of conv2d
 * outputs (a 1x1 convolution). `up` and both biases start at zero, so the delta starts at zero.
 */
export class BottleneckAdapter implements Adapter {
  readonly type = TYPE;
  readonly layerName: string;
  /** The wrapped layer. */
  readonly layer: LayerSpec;
  /** Hidden width. */
  readonly bottleneck: number;
  /** Down projection, random: `[outputSize, bottleneck]`. */
  readonly down: tf.Variable;
  /** Bias of the down projection, zero at start: `[bottleneck]`. */
  readonly downBias: tf.Variable;
  /** Up projection, zero at start: `[bottleneck, outputSize]`. */
  readonly up: tf.Variable;
  /** Bias of the up projection, zero at start: `[outputSize]`. */
  readonly upBias: tf.Variable;
  readonly variables: readonly tf.Variable[];

  /** Throws a ConfigError when the bottleneck width is not a positive integer. */
  constructor(layer: LayerSpec, options: BottleneckAdapterOptions) {
    checkLayerSpec(layer, TYPE);
    checkBottleneck(options.bottleneck);
    checkSeed(options.seed);

    this.layer = layer;
    this.layerName = layer.name;
    this.bottleneck = options.bottleneck;

    const { bottleneck, seed } = options;
    const channels = layer.outputSize;
    const initialDown = (): tf.Tensor => seededUniform([channels, bottleneck], channels, seed);
    this.down = createAdapterVariable(layer.name, TYPE, 'down', initialDown);
    this.downBias = createAdapterVariable(layer.name, TYPE, 'down_bias', () => tf.zeros([bottleneck]));
    this.up = createAdapterVariable(layer.name, TYPE, 'up', () => tf.zeros([bottleneck, channels]));
    this.upBias = createAdapterVariable(layer.name, TYPE, 'up_bias', () => tf.zeros([channels]));
    this.variables = [this.down, this.downBias, this.up, this.upBias];
  }

  /**
   * Returns frozenOutput + delta. The delta depends on the frozen output alone, so `input` is not read.
   * Throws an InputError when the frozen output does not have the layer's rank and `outputSize` channels.
   */
  apply(_input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor {
    checkFrozenOutput(this.layer, TYPE, frozenOutput);

    return tf.tidy(() => {
      const rows = frozenOutput.reshape([-1, this.layer.outputSize]) as tf.Tensor2D;
      const hidden = tf.relu(tf.matMul(rows, this.down as tf.Tensor2D).add(this.downBias));
      const delta = tf.matMul(hidden, this.up as tf.Tensor2D).add(this.upBias);
      return frozenOutput.add(delta.reshape(frozenOutput.shape));
    });
  }

  dispose(): void {
    for (const variable of this.variables) {
      variable.dispose();
    }
  }
}

/** Builds bottleneck adapters (`adapter_type: linear_adapter`) of width `adapter_bottleneck`. */
@injectable()
export class BottleneckAdapterFactory implements AdapterFactory {
  readonly name = TYPE;
  /** Hidden width of every adapter (`adapter_bottleneck`). */
  readonly bottleneck: number;

  /** Throws a ConfigError when `adapterBottleneck` is not a positive integer. */
  constructor(@inject(ConfigId) config: BottleneckSettings) {
    checkBottleneck(config.adapterBottleneck);
    this.bottleneck = config.adapterBottleneck;
  }

  create(layer: LayerSpec, options: AdapterOptions): BottleneckAdapter {
    return new BottleneckAdapter(layer, { bottleneck: this.bottleneck, seed: options.seed });
  }
}

/** Builds a bottleneck factory without a container; the width defaults to the default config's (8). */
export function createBottleneckAdapterFactory(config: BottleneckSettings = defaultConfig()): BottleneckAdapterFactory {
  return new BottleneckAdapterFactory(config);
}

function checkBottleneck(bottleneck: number): void {
  if (!Number.isInteger(bottleneck) || bottleneck < 1) {
    throw new ConfigError(
      'adapter_bottleneck',
      `Invalid value for 'adapter_bottleneck': ${bottleneck}; expected a positive integer.`,
    );
  }
}
