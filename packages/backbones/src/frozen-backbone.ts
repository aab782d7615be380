import * as tf from '@tensorflow/tfjs';

import {
  InputError,
  PluginFailureError,
  type Backbone,
  type BackboneOutput,
  type LayerAdapters,
  type LayerSpec,
} from '@safe-metanet/core';

/** One weight of a backbone with its stable name, such as `layer_0/kernel` or `decoder_1/bias`. */
export interface NamedWeight {
  /** `<layer>/kernel` or `<layer>/bias`, the name stored in the weights file. */
  readonly name: string;
  /** The float32 variable. */
  readonly variable: tf.Variable;
}

/** Everything a FrozenBackbone needs to create its weights. */
export interface BackboneStructure {
  /** Config name of the backbone kind. */
  readonly kind: string;
  /** Adaptable layers in forward order. The last one is dense and produces the logits. */
  readonly layers: readonly LayerSpec[];
  /** Shape of one input sample, without the batch axis. */
  readonly inputShape: readonly number[];
  /** Whether to add the decoder head. */
  readonly decoder: boolean;
  /** Units of the decoder's hidden layer. */
  readonly decoderHiddenDim: number;
  /** Seed of the initial weights. */
  readonly seed: number;
}

/**
 * A classifier of dense and conv2d layers written as plain tfjs ops on variables, so that an
 * adapter can wrap each layer's pre-activation output. Subclasses compute the features that
 * enter the last layer; this class runs the last dense layer and the optional decoder head.
 *
 * The weights are created from the seed with He-uniform (layers followed by ReLU) or
 * Glorot-uniform (the logits layer and the decoder output) kernels and zero biases. They are
 * variables with `trainable` set to false. In tfjs 4.22, `tf.variableGrads` and
 * `Optimizer.minimize` give such a variable no gradient even when `varList` lists it, and they
 * throw when no listed variable is trainable, so the adaptation loop cannot move the weights.
 * To train the source model, call `setTrainable(true)`, pass `weights()` as `varList`, then call
 * `setTrainable(false)`.
 */
export abstract class FrozenBackbone implements Backbone {
  readonly kind: string;
  readonly layers: readonly LayerSpec[];
  readonly inputShape: readonly number[];
  readonly numClasses: number;
  readonly hasDecoder: boolean;
  readonly #namedWeights: readonly NamedWeight[];
  readonly #variables: ReadonlyMap<string, tf.Variable>;
  #disposed = false;

  protected constructor(structure: BackboneStructure) {
    const last = structure.layers.at(-1);
    if (last === undefined || last.kind !== 'dense') {
      throw new Error(`A ${structure.kind} backbone needs a dense last layer, which its layer list lacks.`);
    }

    this.kind = structure.kind;
    this.layers = structure.layers;
    this.inputShape = [...structure.inputShape];
    this.numClasses = last.outputSize;
    this.hasDecoder = structure.decoder;
    this.#namedWeights = createWeights(structure);
    this.#variables = new Map(this.#namedWeights.map((weight) => [weight.name, weight.variable]));
  }

  /** Whether every weight currently takes gradients (false after build). */
  get trainable(): boolean {
    return this.#namedWeights.every((weight) => weight.variable.trainable);
  }

  /** Sets the `trainable` flag of every weight: true to train the source model, false to freeze it again. */
  setTrainable(trainable: boolean): void {
    this.#checkNotDisposed('setTrainable');
    for (const weight of this.#namedWeights) {
      weight.variable.trainable = trainable;
    }
  }

  forward(input: tf.Tensor, adapters: LayerAdapters): BackboneOutput {
    this.#checkNotDisposed('forward');
    this.#checkInput(input);

    return tidyOutput(() => {
      const batch = input.dtype === 'float32' ? input : input.toFloat();
      return this.#runFrom(batch, 0, adapters);
    });
  }

  /**
   * Returns the input of layer `layerIndex` for a batch: the output of the frozen layers below it,
   * without adapters. With forwardFrom it lets a caller compute those layers once per batch.
   */
  forwardPrefix(input: tf.Tensor, layerIndex: number): tf.Tensor {
    this.#checkNotDisposed('forwardPrefix');
    this.#checkInput(input);
    this.#checkLayerIndex(layerIndex);

    return tf.tidy(() => {
      let activation = input.dtype === 'float32' ? input : input.toFloat();
      for (let index = 0; index < layerIndex; index++) {
        activation = this.hiddenStage(index, activation, NO_ADAPTERS);
      }
      return layerIndex === this.layers.length - 1 ? flattenRows(activation) : activation;
    });
  }

  /**
   * Runs the model from layer `layerIndex` on that layer's input (from forwardPrefix), applying the
   * adapters. It runs the same operations as the matching part of `forward`, so the outputs are equal bitwise.
   */
  forwardFrom(activation: tf.Tensor, layerIndex: number, adapters: LayerAdapters): BackboneOutput {
    this.#checkNotDisposed('forwardFrom');
    this.#checkLayerIndex(layerIndex);
    return tidyOutput(() => this.#runFrom(activation, layerIndex, adapters));
  }

  #runFrom(activation: tf.Tensor, layerIndex: number, adapters: LayerAdapters): BackboneOutput {
    let current = activation;
    for (let index = layerIndex; index < this.layers.length - 1; index++) {
      current = this.hiddenStage(index, current, adapters);
    }
    const features = flattenRows(current);
    const logits = this.applyDense(this.layers.length - 1, features, adapters, false);
    if (!this.hasDecoder) {
      return { logits };
    }
    return { logits, reconstruction: this.#decode(features) };
  }

  #checkLayerIndex(layerIndex: number): void {
    if (!Number.isInteger(layerIndex) || layerIndex < 0 || layerIndex >= this.layers.length) {
      throw new InputError(`Invalid layer index ${layerIndex} for the ${this.kind} backbone; use 0 to ${this.layers.length - 1}.`);
    }
  }

  weights(): readonly tf.Variable[] {
    this.#checkNotDisposed('weights');
    return this.#namedWeights.map((weight) => weight.variable);
  }

  /** Returns the weights with their names, in the order of `weights()`. */
  namedWeights(): readonly NamedWeight[] {
    this.#checkNotDisposed('namedWeights');
    return this.#namedWeights;
  }

  /** Disposes every weight. A second call does nothing. */
  dispose(): void {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    for (const weight of this.#namedWeights) {
      weight.variable.dispose();
    }
  }

  /**
   * Runs hidden layer `index` (every layer but the last) with its adapter, its activation and any
   * pooling that follows it. It runs inside a tidy, and its input is float32.
   */
  protected abstract hiddenStage(index: number, input: tf.Tensor, adapters: LayerAdapters): tf.Tensor;

  /** Runs dense layer `index`: matMul and bias, its adapter, then ReLU when `relu` is set. */
  protected applyDense(index: number, input: tf.Tensor2D, adapters: LayerAdapters, relu: boolean): tf.Tensor2D {
    const layer = this.#layer(index, 'dense');
    const frozen = tf.add(tf.matMul(input, this.#weight(`${layer.name}/kernel`)), this.#weight(`${layer.name}/bias`));
    const output = this.#adapt(layer, input, frozen, adapters) as tf.Tensor2D;
    return relu ? tf.relu(output) : output;
  }

  /** Runs conv2d layer `index`: convolution and bias, its adapter, then ReLU. */
  protected applyConv(index: number, input: tf.Tensor4D, adapters: LayerAdapters): tf.Tensor4D {
    const layer = this.#layer(index, 'conv2d');
    const kernel = this.#weight(`${layer.name}/kernel`) as tf.Tensor4D;
    const convolved = tf.conv2d(input, kernel, layer.strides, layer.padding);
    const frozen = tf.add(convolved, this.#weight(`${layer.name}/bias`));
    return tf.relu(this.#adapt(layer, input, frozen, adapters) as tf.Tensor4D);
  }

  #decode(features: tf.Tensor2D): tf.Tensor {
    const hidden = tf.relu(tf.add(tf.matMul(features, this.#weight('decoder_0/kernel')), this.#weight('decoder_0/bias')));
    const output = tf.add(tf.matMul(hidden, this.#weight('decoder_1/kernel')), this.#weight('decoder_1/bias'));
    return tf.sigmoid(output).reshape([-1, ...this.inputShape]);
  }

  #adapt(layer: LayerSpec, input: tf.Tensor, frozen: tf.Tensor, adapters: LayerAdapters): tf.Tensor {
    const adapter = adapters.get(layer.name);
    if (adapter === undefined) {
      return frozen;
    }

    const adapted = adapter.apply(input, frozen);
    if (!sameShape(adapted.shape, frozen.shape)) {
      throw new PluginFailureError(
        adapter.type,
        `The '${adapter.type}' adapter of ${layer.name} returned shape [${adapted.shape.join(', ')}], but the ` +
          `layer's output has shape [${frozen.shape.join(', ')}]; an adapter must keep the shape of the frozen output.`,
      );
    }
    return adapted;
  }

  #layer(index: number, kind: LayerSpec['kind']): LayerSpec {
    const layer = this.layers[index];
    if (layer === undefined || layer.kind !== kind) {
      throw new Error(`The ${this.kind} backbone has no ${kind} layer at index ${index}.`);
    }
    return layer;
  }

  #weight(name: string): tf.Variable {
    const variable = this.#variables.get(name);
    if (variable === undefined) {
      throw new Error(`The ${this.kind} backbone has no weight '${name}'.`);
    }
    return variable;
  }

  #checkNotDisposed(method: string): void {
    if (this.#disposed) {
      throw new Error(`Cannot call ${method}() on a disposed ${this.kind} backbone. Create a new one.`);
    }
  }

  #checkInput(input: tf.Tensor): void {
    const expected = `[batch, ${this.inputShape.join(', ')}]`;
    const actual = `[${input.shape.join(', ')}]`;
    if (input.rank !== this.inputShape.length + 1) {
      throw new InputError(
        `Invalid input for the ${this.kind} backbone: expected shape ${expected}, got rank ${input.rank} with shape ${actual}.`,
      );
    }
    for (let axis = 1; axis < input.rank; axis++) {
      if (input.shape[axis] !== this.inputShape[axis - 1]) {
        throw new InputError(
          `Invalid input for the ${this.kind} backbone: expected shape ${expected}, got ${actual}; axis ${axis} differs.`,
        );
      }
    }
    if (input.shape[0] === 0) {
      throw new InputError(`Invalid input for the ${this.kind} backbone: the batch is empty (shape ${actual}); pass at least one sample.`);
    }
  }
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((size, axis) => size === right[axis]);
}

function product(sizes: readonly number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}

// Weights are created in forward order (kernel, then bias of each layer), then the decoder's, and weights() keeps that order.
function createWeights(structure: BackboneStructure): NamedWeight[] {
  const weights: NamedWeight[] = [];
  const lastIndex = structure.layers.length - 1;

  structure.layers.forEach((layer, index) => {
    const receptiveField = layer.kernelSize * layer.kernelSize;
    const kernelShape =
      layer.kind === 'dense'
        ? [layer.inputSize, layer.outputSize]
        : [layer.kernelSize, layer.kernelSize, layer.inputSize, layer.outputSize];
    const fanIn = receptiveField * layer.inputSize;
    const fanOut = receptiveField * layer.outputSize;
    const limit = index === lastIndex ? glorotLimit(fanIn, fanOut) : heLimit(fanIn);

    weights.push(uniformWeight(`${layer.name}/kernel`, kernelShape, limit, structure.seed));
    weights.push(zeroWeight(`${layer.name}/bias`, layer.outputSize));
  });

  if (structure.decoder) {
    const features = structure.layers[lastIndex]?.inputSize ?? 0;
    const hidden = structure.decoderHiddenDim;
    const outputs = product(structure.inputShape);
    weights.push(uniformWeight('decoder_0/kernel', [features, hidden], heLimit(features), structure.seed));
    weights.push(zeroWeight('decoder_0/bias', hidden));
    weights.push(uniformWeight('decoder_1/kernel', [hidden, outputs], glorotLimit(hidden, outputs), structure.seed));
    weights.push(zeroWeight('decoder_1/bias', outputs));
  }
  return weights;
}

/** He-uniform bound sqrt(6 / fanIn), for kernels followed by ReLU. */
function heLimit(fanIn: number): number {
  return Math.sqrt(6 / fanIn);
}

/** Glorot-uniform bound sqrt(6 / (fanIn + fanOut)), for kernels with no ReLU after them. */
function glorotLimit(fanIn: number, fanOut: number): number {
  return Math.sqrt(6 / (fanIn + fanOut));
}

function uniformWeight(name: string, shape: number[], limit: number, seed: number): NamedWeight {
  // tfjs seeds its uniform generator (seedrandom's alea) with this string in plain JavaScript on
  // every backend, so each weight depends only on the seed and its own name, not on creation order.
  const variable = tf.tidy(() => tf.variable(tf.randomUniform(shape, -limit, limit, 'float32', `${seed}/${name}`), false));
  return { name, variable };
}

function zeroWeight(name: string, size: number): NamedWeight {
  const variable = tf.tidy(() => tf.variable(tf.zeros([size]), false));
  return { name, variable };
}

const NO_ADAPTERS: LayerAdapters = new Map();

// Flattens an activation to [batch, features], as the last (dense) layer takes it; a rank-2 tensor is returned as it is.
function flattenRows(activation: tf.Tensor): tf.Tensor2D {
  if (activation.rank === 2) {
    return activation as tf.Tensor2D;
  }
  return activation.reshape([activation.shape[0] ?? -1, -1]);
}

// tf.tidy keeps the tensors of the returned object; its types only know plain tensor containers.
function tidyOutput(run: () => BackboneOutput): BackboneOutput {
  return tf.tidy(() => run() as unknown as tf.TensorContainer) as unknown as BackboneOutput;
}
