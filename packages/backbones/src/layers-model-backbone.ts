import * as tf from '@tensorflow/tfjs';

import {
  ConfigError,
  InputError,
  PluginFailureError,
  type Backbone,
  type BackboneOutput,
  type LayerAdapters,
  type LayerSpec,
} from '@safe-metanet/core';

import { layersModelFiles, modelJsonPath } from './layers-model-files.js';

/** Layer classes that take adapters. */
const ADAPTABLE_CLASSES = ['Dense', 'Conv2D'] as const;

/** Weightless layer classes the forward pass runs with `layer.apply`. */
const STATELESS_CLASSES = ['Flatten', 'MaxPooling2D', 'AveragePooling2D', 'Dropout', 'Activation', 'Reshape', 'InputLayer'];

type AdaptableClass = (typeof ADAPTABLE_CLASSES)[number];

/** One step of the forward pass: an adaptable layer with its weights, or a layer run as it is. */
type ForwardStep =
  | {
      readonly type: 'adaptable';
      readonly layer: tf.layers.Layer;
      readonly spec: LayerSpec;
      readonly kernel: tf.Variable;
      readonly bias: tf.Variable | undefined;
      /** The layer's activation as a layer of its own; undefined when it is linear or is the final softmax left off. */
      readonly activation: tf.layers.Layer | undefined;
    }
  | { readonly type: 'stateless'; readonly layer: tf.layers.Layer };

/** Options of loadLayersModelBackbone. */
export interface LayersModelBackboneOptions {
  /** Expansion schedule to check against the model when it loads, so that a layer without adapter support is named early. */
  readonly schedule?: readonly string[];
}

/**
 * A trained tfjs Sequential Layers model as a Safe MetaNet backbone. Its Dense and Conv2D layers take
 * adapters under their own layer names, and every weight is frozen (`trainable` false).
 *
 * The forward pass runs the model layer by layer. A Dense or Conv2D layer computes its pre-activation
 * output from its kernel and bias with tf ops, lets the layer's adapter replace that output, then applies
 * the layer's activation. The other supported layers (Flatten, MaxPooling2D, AveragePooling2D, Dropout,
 * Activation, Reshape, InputLayer) and any other layer without weights run through `layer.apply`, with
 * Dropout as the identity because `apply` runs in inference mode.
 *
 * `forward` returns logits: a softmax at the end of the model (the last Dense layer's activation or a final
 * Activation layer) is left off, so the softmax of `forward(...).logits` equals `model.predict`.
 */
export class LayersModelBackbone implements Backbone {
  readonly kind = 'layers_model';
  readonly layers: readonly LayerSpec[];
  readonly inputShape: readonly number[];
  readonly numClasses: number;
  readonly hasDecoder = false;
  /** The loaded model; its weights are the backbone's weights. */
  readonly model: tf.LayersModel;
  /** Whether the model ends in a softmax that `forward` leaves off. */
  readonly dropsFinalSoftmax: boolean;
  readonly #steps: readonly ForwardStep[];
  readonly #allLayers: readonly tf.layers.Layer[];
  #disposed = false;

  /** Wraps a loaded Sequential model; the backbone owns the model from then on. Prefer loadLayersModelBackbone. */
  constructor(model: tf.LayersModel, source = 'the model') {
    if (!(model instanceof tf.Sequential)) {
      throw new InputError(
        `Unsupported model in ${source}: it is a ${model.getClassName()} model, and only Sequential models can be run layer by layer. Save the model as a tf.sequential.`,
      );
    }

    this.model = model;
    this.#allLayers = model.layers;
    this.inputShape = definedShape(model.inputs[0]?.shape ?? [], 'input', source);
    const outputShape = definedShape(model.outputs[0]?.shape ?? [], 'output', source);
    if (outputShape.length !== 1 || (outputShape[0] ?? 0) < 2) {
      throw new InputError(
        `Unsupported model in ${source}: its output has shape [batch, ${outputShape.join(', ')}]; a classifier needs [batch, classes] with at least 2 classes.`,
      );
    }
    this.numClasses = outputShape[0] as number;

    const finalSoftmax = finalSoftmaxOf(model.layers);
    const lastIndex = model.layers.length - 1;
    this.dropsFinalSoftmax = finalSoftmax !== undefined;
    this.#steps = model.layers.flatMap((layer, index) => {
      if (index === lastIndex && finalSoftmax === 'activation_layer') {
        return [];
      }
      return [forwardStep(layer, index === lastIndex && finalSoftmax === 'activation_of_last', source)];
    });
    this.layers = this.#steps.flatMap((step) => (step.type === 'adaptable' ? [step.spec] : []));
    if (this.layers.length === 0) {
      throw new InputError(`Unsupported model in ${source}: it has no Dense or Conv2D layer, so no layer can take an adapter.`);
    }

    model.trainable = false;
    for (const layer of model.layers) {
      layer.trainable = false;
    }
  }

  /** Whether any weight takes gradients; false after load. */
  get trainable(): boolean {
    return this.weights().some((variable) => variable.trainable);
  }

  forward(input: tf.Tensor, adapters: LayerAdapters): BackboneOutput {
    this.#checkNotDisposed('forward');
    this.#checkInput(input);

    return tf.tidy(() => {
      let output = input.dtype === 'float32' ? input : input.toFloat();
      for (const step of this.#steps) {
        output = step.type === 'adaptable' ? this.#applyAdaptable(step, output, adapters) : (step.layer.apply(output) as tf.Tensor);
      }
      return { logits: output as tf.Tensor2D };
    });
  }

  weights(): readonly tf.Variable[] {
    this.#checkNotDisposed('weights');
    return this.model.weights.map((weight) => weight.read() as tf.Variable);
  }

  /**
   * Checks an expansion schedule against the model: a name of a layer of another type raises a ConfigError
   * naming the layer and its type, and a name that is no layer of the model one listing the adaptable layers.
   */
  checkSchedule(schedule: readonly string[]): void {
    for (const name of schedule) {
      if (this.layers.some((layer) => layer.name === name)) {
        continue;
      }
      const layer = this.#allLayers.find((candidate) => candidate.name === name);
      const valid = this.layers.map((spec) => spec.name).join(', ');
      if (layer !== undefined) {
        throw new ConfigError(
          'expansion_schedule',
          `Invalid value for 'expansion_schedule': layer '${name}' is a ${layer.getClassName()} layer, and only Dense and Conv2D layers take adapters. Adaptable layers: ${valid}.`,
        );
      }
      throw new ConfigError('expansion_schedule', `Invalid value for 'expansion_schedule': the model has no layer '${name}'. Adaptable layers: ${valid}.`);
    }
  }

  /** Disposes the model and its weights. A second call does nothing. */
  dispose(): void {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    // The activation layers the backbone created own no tensors, so disposing the model frees every weight.
    this.model.dispose();
  }

  #applyAdaptable(step: Extract<ForwardStep, { type: 'adaptable' }>, input: tf.Tensor, adapters: LayerAdapters): tf.Tensor {
    const { spec } = step;
    let output: tf.Tensor;
    if (spec.kind === 'dense') {
      // Keras applies Dense to the last axis, so inputs of rank above 2 are flattened to rows for the adapter and reshaped back.
      const rows = input.reshape([-1, spec.inputSize]) as tf.Tensor2D;
      const frozen = addBias(tf.matMul(rows, step.kernel as tf.Tensor2D), step.bias);
      output = adapt(spec, rows, frozen, adapters).reshape([...input.shape.slice(0, -1), spec.outputSize]);
    } else {
      const frozen = addBias(tf.conv2d(input as tf.Tensor4D, step.kernel as tf.Tensor4D, spec.strides, spec.padding), step.bias);
      output = adapt(spec, input, frozen, adapters);
    }
    return step.activation === undefined ? output : (step.activation.apply(output) as tf.Tensor);
  }

  #checkNotDisposed(method: string): void {
    if (this.#disposed) {
      throw new Error(`Cannot call ${method}() on a disposed ${this.kind} backbone. Load the model again.`);
    }
  }

  #checkInput(input: tf.Tensor): void {
    const expected = `[batch, ${this.inputShape.join(', ')}]`;
    const actual = `[${input.shape.join(', ')}]`;
    const sameSample = input.rank === this.inputShape.length + 1 && this.inputShape.every((size, axis) => input.shape[axis + 1] === size);
    if (!sameSample) {
      throw new InputError(`Invalid input for the ${this.kind} backbone: expected shape ${expected}, got ${actual}.`);
    }
    if (input.shape[0] === 0) {
      throw new InputError(`Invalid input for the ${this.kind} backbone: the batch is empty (shape ${actual}); pass at least one sample.`);
    }
  }
}

/**
 * Loads a tfjs Layers model saved as `model.json` plus weight files (the folder or the JSON file's path)
 * and wraps it as a backbone with frozen weights. Missing or corrupt files, models that are not Sequential,
 * and layers that hold weights but are neither Dense nor Conv2D raise an InputError naming the file and the
 * layer; `options.schedule` is checked with `checkSchedule`.
 */
export async function loadLayersModelBackbone(location: string, options: LayersModelBackboneOptions = {}): Promise<LayersModelBackbone> {
  const modelPath = modelJsonPath(location);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(layersModelFiles(modelPath));
  } catch (error) {
    if (error instanceof InputError) {
      throw error;
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError(`Cannot load the Layers model in ${modelPath}: ${reason}`, { cause: error });
  }

  let backbone: LayersModelBackbone;
  try {
    backbone = new LayersModelBackbone(model, modelPath);
  } catch (error) {
    model.dispose();
    throw error;
  }
  if (options.schedule !== undefined) {
    try {
      backbone.checkSchedule(options.schedule);
    } catch (error) {
      backbone.dispose();
      throw error;
    }
  }
  return backbone;
}

/** Returns the adaptable layers of the backbone from last to first, the default expansion schedule. */
export function defaultLayersModelSchedule(backbone: Pick<Backbone, 'layers'>): string[] {
  return backbone.layers.map((layer) => layer.name).reverse();
}

type FinalSoftmax = 'activation_of_last' | 'activation_layer';

function finalSoftmaxOf(layers: readonly tf.layers.Layer[]): FinalSoftmax | undefined {
  const last = layers.at(-1);
  if (last === undefined || activationName(last) !== 'softmax') {
    return undefined;
  }
  return last.getClassName() === 'Activation' ? 'activation_layer' : 'activation_of_last';
}

function activationName(layer: tf.layers.Layer): string | undefined {
  const activation = layer.getConfig()['activation'];
  return typeof activation === 'string' ? activation : undefined;
}

function forwardStep(layer: tf.layers.Layer, dropActivation: boolean, source: string): ForwardStep {
  const className = layer.getClassName();
  if ((ADAPTABLE_CLASSES as readonly string[]).includes(className)) {
    return adaptableStep(layer, className as AdaptableClass, dropActivation, source);
  }
  if (layer.weights.length > 0) {
    throw new InputError(
      `Unsupported layer '${layer.name}' of type ${className} in ${source}: it has weights, and this backbone runs only Dense and Conv2D layers with weights ` +
        `(and ${STATELESS_CLASSES.join(', ')} without). Remove the layer or fold it into a Dense or Conv2D layer before saving.`,
    );
  }
  return { type: 'stateless', layer };
}

function adaptableStep(layer: tf.layers.Layer, className: AdaptableClass, dropActivation: boolean, source: string): ForwardStep {
  const config = layer.getConfig();
  const unsupported = (detail: string): InputError =>
    new InputError(`Unsupported layer '${layer.name}' of type ${className} in ${source}: ${detail}.`);

  const kernel = weightNamed(layer, 'kernel');
  if (kernel === undefined) {
    throw unsupported('it has no kernel weight');
  }
  const bias = config['useBias'] === false ? undefined : weightNamed(layer, 'bias');
  const inputShape = (layer.input as tf.SymbolicTensor).shape;
  const inputSize = inputShape.at(-1);
  if (typeof inputSize !== 'number') {
    throw unsupported(`its input shape [${inputShape.join(', ')}] has no defined last axis`);
  }

  let spec: LayerSpec;
  if (className === 'Dense') {
    spec = { name: layer.name, kind: 'dense', inputSize, outputSize: Number(config['units']), kernelSize: 1, strides: 1, padding: 'valid' };
  } else {
    if (config['dataFormat'] !== undefined && config['dataFormat'] !== 'channelsLast') {
      throw unsupported(`dataFormat is ${String(config['dataFormat'])}, and only channelsLast (NHWC) is supported`);
    }
    const kernelSize = squareValue(config['kernelSize']);
    const strides = squareValue(config['strides']);
    const dilation = squareValue(config['dilationRate'] ?? 1);
    const padding = config['padding'];
    if (kernelSize === undefined) {
      throw unsupported(`kernelSize ${JSON.stringify(config['kernelSize'])} is not square, and adapters need a square kernel`);
    }
    if (strides === undefined) {
      throw unsupported(`strides ${JSON.stringify(config['strides'])} differ by axis, and adapters need equal strides`);
    }
    if (dilation !== 1) {
      throw unsupported(`dilationRate ${JSON.stringify(config['dilationRate'])} is not 1`);
    }
    if (padding !== 'same' && padding !== 'valid') {
      throw unsupported(`padding ${JSON.stringify(padding)} is not 'same' or 'valid'`);
    }
    spec = { name: layer.name, kind: 'conv2d', inputSize, outputSize: Number(config['filters']), kernelSize, strides, padding };
  }

  const name = activationName(layer) ?? 'linear';
  const activation = dropActivation || name === 'linear' ? undefined : tf.layers.activation({ activation: name as never });
  return { type: 'adaptable', layer, spec, kernel, bias, activation };
}

function weightNamed(layer: tf.layers.Layer, suffix: string): tf.Variable | undefined {
  const weight = layer.weights.find((candidate) => candidate.originalName.endsWith(`/${suffix}`) || candidate.name.endsWith(`/${suffix}`));
  return weight?.read() as tf.Variable | undefined;
}

function squareValue(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return value;
  }
  if (Array.isArray(value) && value.length === 2 && value[0] === value[1] && typeof value[0] === 'number') {
    return value[0];
  }
  return undefined;
}

function definedShape(shape: readonly (number | null)[], what: string, source: string): number[] {
  const sample = shape.slice(1);
  if (sample.some((size) => typeof size !== 'number')) {
    throw new InputError(
      `Unsupported model in ${source}: its ${what} shape [${shape.map(String).join(', ')}] has undefined axes besides the batch; save the model with a fixed inputShape.`,
    );
  }
  return sample as number[];
}

function addBias(output: tf.Tensor, bias: tf.Variable | undefined): tf.Tensor {
  return bias === undefined ? output : tf.add(output, bias);
}

function adapt(layer: LayerSpec, input: tf.Tensor, frozen: tf.Tensor, adapters: LayerAdapters): tf.Tensor {
  const adapter = adapters.get(layer.name);
  if (adapter === undefined) {
    return frozen;
  }
  const adapted = adapter.apply(input, frozen);
  const same = adapted.rank === frozen.rank && adapted.shape.every((size, axis) => size === frozen.shape[axis]);
  if (!same) {
    throw new PluginFailureError(
      adapter.type,
      `The '${adapter.type}' adapter of ${layer.name} returned shape [${adapted.shape.join(', ')}], but the ` +
        `layer's output has shape [${frozen.shape.join(', ')}]; an adapter must keep the shape of the frozen output.`,
    );
  }
  return adapted;
}
