import * as tf from '@tensorflow/tfjs';

import type { FrozenLayerActivations, FrozenTrace } from './backbone.js';

/** Host copies of the frozen activations of the memory's samples at one layer. */
interface HostActivations {
  readonly input: Float32Array;
  readonly inputShape: readonly number[];
  readonly frozenOutput: Float32Array;
  readonly outputShape: readonly number[];
}

/** Returns a copy of a tensor's values, which later kernels cannot change. */
function hostCopy(tensor: tf.Tensor): Float32Array {
  return Float32Array.from(tensor.dataSync());
}

function rowSize(shape: readonly number[]): number {
  return shape.slice(1).reduce((product, size) => product * size, 1);
}

// Copies row `source` of [previous rows; batch rows] into row `row` of `target`.
function copyRow(target: Float32Array, row: number, source: number, previous: Float32Array | undefined, batch: Float32Array, previousCount: number, size: number): void {
  const fromPrevious = source < previousCount;
  const values = fromPrevious ? (previous as Float32Array) : batch;
  const start = (fromPrevious ? source : source - previousCount) * size;
  target.set(values.subarray(start, start + size), row * size);
}

/**
 * The frozen activations of the sample memory, kept on the host from one step to the next. A sample keeps
 * its activations while it stays in the memory, and a new sample brings those of its batch's trace, so the
 * frozen layers run on each sample once rather than at every step it spends in the memory.
 */
export class MemoryActivations {
  #current = new Map<number, HostActivations>();
  #previous = new Map<number, HostActivations>();
  #sources: readonly number[] = [];
  #previousCount = 0;

  /** Records that the memory now contains rows `sources` of [its previous `previousCount` samples; the batch]. */
  update(sources: readonly number[], previousCount: number): void {
    this.#previous = this.#current;
    this.#current = new Map();
    this.#sources = sources;
    this.#previousCount = previousCount;
  }

  /** Forgets every activation, for contents that did not come from update (a checkpoint, say). */
  clear(): void {
    this.#current = new Map();
    this.#previous = new Map();
    this.#sources = [];
    this.#previousCount = 0;
  }

  /**
   * Returns a trace of the memory's samples. Each layer is assembled from the kept activations and
   * `batchTrace`, or computed by `computeTrace` when the previous contents have none at that layer.
   */
  trace(batchTrace: FrozenTrace, computeTrace: () => FrozenTrace, lastIndex: number): FrozenTrace {
    const owned: tf.Tensor[] = [];
    const layers = new Map<number, FrozenLayerActivations>();
    let computed: FrozenTrace | undefined;

    const layer = (layerIndex: number): FrozenLayerActivations => {
      const known = layers.get(layerIndex);
      if (known !== undefined) {
        return known;
      }
      let host = this.#current.get(layerIndex);
      let activations: FrozenLayerActivations;
      if (host === undefined && !this.#canAssemble(layerIndex)) {
        computed ??= computeTrace();
        activations = computed.layer(layerIndex);
        host = {
          input: hostCopy(activations.input),
          inputShape: activations.input.shape,
          frozenOutput: hostCopy(activations.frozenOutput),
          outputShape: activations.frozenOutput.shape,
        };
      } else {
        host ??= this.#assemble(batchTrace.layer(layerIndex), layerIndex);
        const input = tf.keep(tf.tensor(host.input, [...host.inputShape], 'float32'));
        const frozenOutput = tf.keep(tf.tensor(host.frozenOutput, [...host.outputShape], 'float32'));
        owned.push(input, frozenOutput);
        activations = { input, frozenOutput };
      }
      this.#current.set(layerIndex, host);
      layers.set(layerIndex, activations);
      return activations;
    };
    return {
      layer,
      logits: () => layer(lastIndex).frozenOutput as tf.Tensor2D,
      dispose: () => {
        tf.dispose(owned);
        owned.length = 0;
        layers.clear();
        computed?.dispose();
      },
    };
  }

  // Whether every sample of the memory has activations at the layer: kept ones, or its batch's.
  #canAssemble(layerIndex: number): boolean {
    if (this.#sources.length === 0) {
      return false;
    }
    return this.#previous.has(layerIndex) || this.#sources.every((source) => source >= this.#previousCount);
  }

  #assemble(batch: FrozenLayerActivations, layerIndex: number): HostActivations {
    const previous = this.#previous.get(layerIndex);
    const count = this.#sources.length;
    const inputSize = rowSize(batch.input.shape);
    const outputSize = rowSize(batch.frozenOutput.shape);
    const batchInput = batch.input.dataSync() as Float32Array;
    const batchOutput = batch.frozenOutput.dataSync() as Float32Array;
    const input = new Float32Array(count * inputSize);
    const frozenOutput = new Float32Array(count * outputSize);
    this.#sources.forEach((source, row) => {
      copyRow(input, row, source, previous?.input, batchInput, this.#previousCount, inputSize);
      copyRow(frozenOutput, row, source, previous?.frozenOutput, batchOutput, this.#previousCount, outputSize);
    });
    return {
      input,
      inputShape: [count, ...batch.input.shape.slice(1)],
      frozenOutput,
      outputShape: [count, ...batch.frozenOutput.shape.slice(1)],
    };
  }
}
