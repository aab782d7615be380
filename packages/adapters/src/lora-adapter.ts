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
import { checkFrozenOutput, checkLayerInput, checkLayerSpec, describeLayer, layerOutputShape } from './layer-shapes.js';

const TYPE = 'lora';

/** The config values a LoRA factory reads. */
export type LoraSettings = Pick<SafeMetaNetConfig, 'loraRank' | 'loraAlpha'>;

/** Rank, alpha and seed of one LoRA adapter. */
export interface LoraAdapterOptions {
  /** Rank of the update, from 1 to maxLoraRank(layer). */
  readonly rank: number;
  /** Scale numerator: the delta is multiplied by alpha / rank. */
  readonly alpha: number;
  /** Seed of the random A factor. */
  readonly seed: number;
}

/**
 * Returns the largest useful LoRA rank of a layer: min(inputSize * kernelSize², outputSize), the
 * rank of the layer's kernel flattened to a `[fan-in, outputSize]` matrix. A larger rank adds
 * parameters but cannot raise the rank of the update.
 */
export function maxLoraRank(layer: LayerSpec): number {
  const fanIn = layer.kind === 'dense' ? layer.inputSize : layer.inputSize * layer.kernelSize * layer.kernelSize;
  return Math.min(fanIn, layer.outputSize);
}

/**
 * LoRA: a low-rank update of a frozen dense or conv2d layer. Dense:
 * delta = (alpha / rank) · (input · A) · B. Conv2d: delta = (alpha / rank) · conv1x1(conv2d(input, A), B),
 * where A has the layer's kernel size, strides and padding. B starts at zero, so the delta starts at zero.
 */
export class LoraAdapter implements Adapter {
  readonly type = TYPE;
  readonly layerName: string;
  /** The wrapped layer. */
  readonly layer: LayerSpec;
  /** Rank of the update. */
  readonly rank: number;
  /** Multiplier of the delta: alpha / rank. */
  readonly scale: number;
  /** Down projection, random: `[inputSize, rank]` (dense) or `[k, k, inputSize, rank]` (conv2d). */
  readonly a: tf.Variable;
  /** Up projection, zero at start: `[rank, outputSize]` (dense) or `[1, 1, rank, outputSize]` (conv2d). */
  readonly b: tf.Variable;
  readonly variables: readonly tf.Variable[];

  /** Throws a ConfigError when the rank or alpha is invalid or the rank exceeds maxLoraRank(layer). */
  constructor(layer: LayerSpec, options: LoraAdapterOptions) {
    checkLayerSpec(layer, TYPE);
    checkLoraSettings(options.rank, options.alpha);
    checkSeed(options.seed);

    const maxRank = maxLoraRank(layer);
    if (options.rank > maxRank) {
      throw new ConfigError(
        'lora_rank',
        `Invalid value for 'lora_rank': ${options.rank} exceeds the maximum rank ${maxRank} of layer ` +
          `'${layer.name}' (${describeLayer(layer)}). Set lora_rank to at most ${maxRank}, or remove the layer ` +
          'from expansion_schedule.',
      );
    }

    this.layer = layer;
    this.layerName = layer.name;
    this.rank = options.rank;
    this.scale = options.alpha / options.rank;

    const { rank, seed } = options;
    const k = layer.kernelSize;
    const dense = layer.kind === 'dense';
    const aShape = dense ? [layer.inputSize, rank] : [k, k, layer.inputSize, rank];
    const bShape = dense ? [rank, layer.outputSize] : [1, 1, rank, layer.outputSize];
    const fanIn = dense ? layer.inputSize : layer.inputSize * k * k;
    this.a = createAdapterVariable(layer.name, TYPE, 'A', () => seededUniform(aShape, fanIn, seed));
    this.b = createAdapterVariable(layer.name, TYPE, 'B', () => tf.zeros(bShape));
    this.variables = [this.a, this.b];
  }

  /** Returns frozenOutput + delta; throws an InputError when a shape does not fit the layer. */
  apply(input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor {
    checkLayerInput(this.layer, TYPE, input);
    checkFrozenOutput(this.layer, TYPE, frozenOutput, layerOutputShape(this.layer, TYPE, input));

    return tf.tidy(() => {
      const product = this.layer.kind === 'dense' ? this.#denseProduct(input) : this.#convProduct(input);
      return frozenOutput.add(product.mul(this.scale));
    });
  }

  dispose(): void {
    this.a.dispose();
    this.b.dispose();
  }

  #denseProduct(input: tf.Tensor): tf.Tensor {
    const down = tf.matMul(input as tf.Tensor2D, this.a as tf.Tensor2D);
    return tf.matMul(down, this.b as tf.Tensor2D);
  }

  #convProduct(input: tf.Tensor): tf.Tensor {
    const down = tf.conv2d(input as tf.Tensor4D, this.a as tf.Tensor4D, this.layer.strides, this.layer.padding);
    return tf.conv2d(down, this.b as tf.Tensor4D, 1, 'valid');
  }
}

/** Builds LoRA adapters (`adapter_type: lora`) from `lora_rank` and `lora_alpha`. */
@injectable()
export class LoraAdapterFactory implements AdapterFactory {
  readonly name = TYPE;
  /** Rank of every adapter (`lora_rank`). */
  readonly rank: number;
  /** Scale numerator (`lora_alpha`); the delta is multiplied by alpha / rank. */
  readonly alpha: number;

  /** Throws a ConfigError when `loraRank` is not a positive integer or `loraAlpha` is not a positive number. */
  constructor(@inject(ConfigId) config: LoraSettings) {
    checkLoraSettings(config.loraRank, config.loraAlpha);
    this.rank = config.loraRank;
    this.alpha = config.loraAlpha;
  }

  create(layer: LayerSpec, options: AdapterOptions): LoraAdapter {
    return new LoraAdapter(layer, { rank: this.rank, alpha: this.alpha, seed: options.seed });
  }
}

/** Builds a LoRA factory without a container; the settings default to the default config's (rank 4, alpha 4). */
export function createLoraAdapterFactory(config: LoraSettings = defaultConfig()): LoraAdapterFactory {
  return new LoraAdapterFactory(config);
}

function checkLoraSettings(rank: number, alpha: number): void {
  if (!Number.isInteger(rank) || rank < 1) {
    throw new ConfigError('lora_rank', `Invalid value for 'lora_rank': ${rank}; expected a positive integer.`);
  }
  if (!Number.isFinite(alpha) || alpha <= 0) {
    throw new ConfigError('lora_alpha', `Invalid value for 'lora_alpha': ${alpha}; expected a number greater than 0.`);
  }
}
