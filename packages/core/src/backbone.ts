import type * as tf from '@tensorflow/tfjs';

import type { Adapter } from './adapter.js';

/** Kind of an adaptable layer. */
export type LayerKind = 'dense' | 'conv2d';

/** Shape of an adaptable layer, which is all an adapter factory needs to build an adapter for it. */
export interface LayerSpec {
  /** Layer name, `layer_0 … layer_{n-1}` for the built-in backbones. */
  readonly name: string;
  /** `dense` (input `[batch, inputSize]`) or `conv2d` (input `[batch, height, width, inputSize]`, NHWC). */
  readonly kind: LayerKind;
  /** Input features (dense) or input channels (conv2d). */
  readonly inputSize: number;
  /** Output units (dense) or filters (conv2d). */
  readonly outputSize: number;
  /** Square kernel size in pixels; 1 for dense layers. */
  readonly kernelSize: number;
  /** Stride in pixels; 1 for dense layers. */
  readonly strides: number;
  /** Padding mode of the convolution; `valid` for dense layers. */
  readonly padding: 'same' | 'valid';
}

/** Adapters by the name of the layer they wrap; a layer without an entry runs frozen. */
export type LayerAdapters = ReadonlyMap<string, Adapter>;

/** Outputs of one forward pass. */
export interface BackboneOutput {
  /** Class scores before softmax, `[batch, numClasses]`. */
  readonly logits: tf.Tensor2D;
  /** Decoder reconstruction of the input, same shape as the input; only for backbones with a decoder. */
  readonly reconstruction?: tf.Tensor;
}

/** Activations of the frozen model at one layer for one batch. */
export interface FrozenLayerActivations {
  /** The layer's input: the output of the frozen layers below it, flattened to `[batch, features]` for a dense layer. */
  readonly input: tf.Tensor;
  /** The layer's frozen output, before its adapter and activation: input · kernel + bias, or the convolution plus bias. */
  readonly frozenOutput: tf.Tensor;
}

/**
 * The frozen model's activations on one batch. It owns the tensors it computes, which stay valid until
 * dispose. Layer 0's input may be the batch itself, so the caller keeps the batch alive until then. The
 * loop requests layers in any order, inside tf.tidy and inside gradient tapes. An implementation
 * therefore computes each layer once, keeps it with tf.keep and returns the same tensors on later calls.
 */
export interface FrozenTrace {
  /** Returns the activations of layer `layerIndex`, computing the frozen layers up to it on the first call. */
  layer(layerIndex: number): FrozenLayerActivations;
  /** Returns the frozen model's logits, `[batch, numClasses]`. */
  logits(): tf.Tensor2D;
  /** Disposes every tensor the trace computed; the batch itself belongs to the caller. */
  dispose(): void;
}

/** Options of a forward pass. */
export interface ForwardOptions {
  /**
   * Whether a backbone with a decoder computes the reconstruction. Default true; the loop passes false
   * unless the proxy metric declares `requiresDecoder`, which skips the decoder's products.
   */
  readonly reconstruction?: boolean;
}

/** A frozen classifier whose named layers can carry adapters. */
export interface Backbone {
  /** Config name of the backbone kind, such as `mlp` or `cnn`. */
  readonly kind: string;
  /** Adaptable layers in forward order. */
  readonly layers: readonly LayerSpec[];
  /** Shape of one input sample, without the batch axis: `[features]` or `[height, width, channels]`. */
  readonly inputShape: readonly number[];
  /** Number of classes. */
  readonly numClasses: number;
  /** Whether `forward` also returns a reconstruction of the input. */
  readonly hasDecoder: boolean;
  /** Runs the model on a batch, applying the adapter of each layer that has one. */
  forward(input: tf.Tensor, adapters: LayerAdapters, options?: ForwardOptions): BackboneOutput;
  /**
   * Returns the frozen model's activations on a batch, computed layer by layer when first requested.
   * Optional; with forwardFrom it lets the loop compute the frozen layers once per batch rather than
   * once per evaluation. The trace's logits must equal `forward(input, new Map()).logits`, because the
   * source-anchor and drift checks read them.
   */
  traceFrozen?(input: tf.Tensor): FrozenTrace;
  /**
   * Runs the model from layer `layerIndex` on that layer's input, with adapters; equal bitwise to `forward`.
   * `frozenOutput`, when given, is the layer's frozen output for this input (from a FrozenTrace), which
   * the layer then does not compute again. The returned tensors belong to the caller, never to the trace:
   * where the logits would be `frozenOutput` itself (the last layer without an adapter), return a clone.
   * With a decoder head, the output has the reconstruction too, as `forward` does, unless `options` turns it off.
   */
  forwardFrom?(activation: tf.Tensor, layerIndex: number, adapters: LayerAdapters, frozenOutput?: tf.Tensor, options?: ForwardOptions): BackboneOutput;
  /** The frozen weights (kernels, biases, decoder), in a fixed order. */
  weights(): readonly tf.Variable[];
  /** Releases every tensor the backbone owns. */
  dispose(): void;
}
