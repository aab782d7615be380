import type * as tf from '@tensorflow/tfjs';

import type { BackboneOutput } from './backbone.js';

/** Inputs of a proxy metric: one batch and the model's outputs on it. */
export interface ProxyInputs {
  /** The unlabeled batch. */
  readonly input: tf.Tensor;
  /** Forward pass outputs of the adapted model on `input`. */
  readonly output: BackboneOutput;
}

/** A self-supervised score of the model on an unlabeled batch; lower is better. */
export interface ProxyMetric {
  /** Config name (`proxy`). */
  readonly name: string;
  /**
   * Whether the metric needs a backbone with a decoder head. The loop requests
   * `output.reconstruction` from the backbone only when this is true, so a metric that reads it must set it.
   */
  readonly requiresDecoder: boolean;
  /** Computes the metric as a differentiable scalar; the loop minimises it and gates on it. */
  compute(inputs: ProxyInputs): tf.Scalar;
}
