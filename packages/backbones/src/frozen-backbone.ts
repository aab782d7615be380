import * as tf from '@tensorflow/tfjs';

import {
  InputError,
  PluginFailureError,
  type Backbone,
  type BackboneOutput,
  type ForwardOptions,
  type FrozenLayerActivations,
  type FrozenTrace,
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
 * adapter can wrap each layer's pre-activation output. This class runs every layer: its frozen
 * product, the adapter, then ReLU for all but the last. It also runs the optional decoder head. A
 * subclass describes the layers and adds what follows an activation, such as pooling.
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

  forward(input: tf.Tensor, adapters: LayerAdapters, options?: ForwardOptions): BackboneOutput {
    this.#checkNotDisposed('forward');
    this.#checkInput(input);

    return tidyOutput(() => {
      const batch = input.dtype === 'float32' ? input : input.toFloat();
      return this.#runFrom(batch, 0, adapters, undefined, options);
    });
  }

  /**
   * Returns the frozen model's activations on a batch. Each layer is computed when first requested, with
   * the operations of `forward`, so a `forwardFrom` on them equals `forward` bitwise.
   */
  traceFrozen(input: tf.Tensor): FrozenTrace {
    this.#checkNotDisposed('traceFrozen');
    this.#checkInput(input);
    const owned: tf.Tensor[] = [];
    const own = <T extends tf.Tensor>(tensor: T): T => {
      owned.push(tf.keep(tensor));
      return tensor;
    };
    const layers: FrozenLayerActivations[] = [];
    let next: tf.Tensor = input.dtype === 'float32' ? input : own(input.toFloat());
    const lastIndex = this.layers.length - 1;
    let traceDisposed = false;

    const layer = (layerIndex: number): FrozenLayerActivations => {
      this.#checkNotDisposed('FrozenTrace.layer');
      if (traceDisposed) {
        throw new Error('Cannot call layer() or logits() on a disposed FrozenTrace. Call traceFrozen again.');
      }
      this.#checkLayerIndex(layerIndex);
      // Layer 0's input is the batch itself, and later layers are computed from it on request.
      if (input.isDisposed) {
        throw new InputError('The batch of this FrozenTrace was disposed. Keep the batch until the trace is disposed.');
      }
      for (let index = layers.length; index <= layerIndex; index++) {
        tf.tidy(() => {
          // A rank-2 activation is its own flattened form and is owned already.
          const flattened = index === lastIndex ? flattenRows(next) : next;
          const layerInput = flattened === next ? next : own(flattened);
          const frozenOutput = own(this.#frozenOutput(index, layerInput));
          layers.push({ input: layerInput, frozenOutput });
          if (index < lastIndex) {
            next = own(this.#finishLayer(index, layerInput, frozenOutput, NO_ADAPTERS));
          }
        });
      }
      return layers[layerIndex] as FrozenLayerActivations;
    };
    return {
      layer,
      // The last layer has no activation, so without an adapter its frozen output is the logits.
      logits: () => layer(lastIndex).frozenOutput as tf.Tensor2D,
      dispose: () => {
        tf.dispose(owned);
        owned.length = 0;
        layers.length = 0;
        traceDisposed = true;
      },
    };
  }

  /**
   * Runs the model from layer `layerIndex` on that layer's input (from traceFrozen), applying the
   * adapters. It runs the same operations as the matching part of `forward`, so the outputs are equal
   * bitwise. `frozenOutput`, when given, is the layer's own frozen product on this input. The outputs are
   * new tensors that the caller owns, even where the logits equal `frozenOutput`.
   */
  forwardFrom(activation: tf.Tensor, layerIndex: number, adapters: LayerAdapters, frozenOutput?: tf.Tensor, options?: ForwardOptions): BackboneOutput {
    this.#checkNotDisposed('forwardFrom');
    this.#checkLayerIndex(layerIndex);
    return tidyOutput(() => {
      const output = this.#runFrom(activation, layerIndex, adapters, frozenOutput, options);
      // Without an adapter on the last layer the logits are its frozen output, which belongs to the trace.
      return output.logits === frozenOutput ? { ...output, logits: tf.clone(output.logits) } : output;
    });
  }

  #runFrom(activation: tf.Tensor, layerIndex: number, adapters: LayerAdapters, frozenOutput?: tf.Tensor, options?: ForwardOptions): BackboneOutput {
    const lastIndex = this.layers.length - 1;
    const frozenAt = (index: number, input: tf.Tensor): tf.Tensor =>
      index === layerIndex && frozenOutput !== undefined ? frozenOutput : this.#frozenOutput(index, input);
    let current = activation;
    for (let index = layerIndex; index < lastIndex; index++) {
      current = this.#finishLayer(index, current, frozenAt(index, current), adapters);
    }
    const features = flattenRows(current);
    const logits = this.#finishLayer(lastIndex, features, frozenAt(lastIndex, features), adapters) as tf.Tensor2D;
    if (!this.hasDecoder || options?.reconstruction === false) {
      return { logits };
    }
    return { logits, reconstruction: this.#decode(features) };
  }

  // The frozen product of a layer: input · kernel + bias for a dense layer, the convolution plus bias for a conv2d layer.
  #frozenOutput(index: number, input: tf.Tensor): tf.Tensor {
    const layer = this.layers[index] as LayerSpec;
    const kernel = this.#weight(`${layer.name}/kernel`);
    const bias = this.#weight(`${layer.name}/bias`);
    if (layer.kind === 'dense') {
      return tf.add(tf.matMul(input as tf.Tensor2D, kernel as tf.Tensor2D), bias);
    }
    return tf.add(tf.conv2d(input as tf.Tensor4D, kernel as tf.Tensor4D, layer.strides, layer.padding), bias);
  }

  // Applies a layer's adapter to its frozen output, then, for every layer but the last, ReLU and afterActivation.
  #finishLayer(index: number, input: tf.Tensor, frozenOutput: tf.Tensor, adapters: LayerAdapters): tf.Tensor {
    const adapted = this.#adapt(this.layers[index] as LayerSpec, input, frozenOutput, adapters);
    if (index === this.layers.length - 1) {
      return adapted;
    }
    return this.afterActivation(index, tf.relu(adapted));
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

  /** Runs what follows the ReLU of hidden layer `index` (pooling, say); the default returns the activation as it is. */
  protected afterActivation(_index: number, activation: tf.Tensor): tf.Tensor {
    return activation;
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
