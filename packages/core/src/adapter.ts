import type * as tf from '@tensorflow/tfjs';

import type { LayerSpec } from './backbone.js';

/** A small trainable module added to one frozen layer; its delta is zero when created. */
export interface Adapter {
  /** Name of the layer the adapter wraps. */
  readonly layerName: string;
  /** Config name of the adapter type, such as `lora`. */
  readonly type: string;
  /** Trainable parameters; the loop snapshots, trains and restores exactly these. */
  readonly variables: readonly tf.Variable[];
  /**
   * Returns the adapted pre-activation output of the layer.
   * @param input the layer's input
   * @param frozenOutput the frozen layer's pre-activation output for `input`
   */
  apply(input: tf.Tensor, frozenOutput: tf.Tensor): tf.Tensor;
  /** Releases the adapter's variables. */
  dispose(): void;
}

/** Options every adapter factory receives. */
export interface AdapterOptions {
  /** Seed for the random initial values, so that the same seed gives the same adapter. */
  readonly seed: number;
}

/** Builds adapters of one type for dense and conv layers. */
export interface AdapterFactory {
  /** Config name of the adapter type (`adapter_type`). */
  readonly name: string;
  /** Builds an adapter for `layer` whose delta is zero; throws a ConfigError when the layer cannot take one. */
  create(layer: LayerSpec, options: AdapterOptions): Adapter;
}
