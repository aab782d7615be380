import * as tf from '@tensorflow/tfjs';

import { InputError } from './errors.js';

/** One stored sample: its row in the memory tensor, the class it was filed under and when it arrived. */
interface Slot {
  readonly row: number;
  readonly label: number;
  readonly arrival: number;
}

/** The origin of the memory's rows after an add: rows of [the previous contents; the batch]. */
export interface MemoryUpdate {
  /** For each row of the new contents, its row in the previous contents, or `previousCount` plus its row in the batch. */
  readonly sources: readonly number[];
  /** Samples the memory held before the add. */
  readonly previousCount: number;
}

/** The memory's contents in plain values, for checkpoints. */
export interface MemoryState {
  /** Shape of the stored samples, batch axis first. */
  readonly shape: readonly number[];
  /** Float32 values of the samples in row-major order. */
  readonly values: readonly number[];
  /** Class each sample is filed under, one per sample. */
  readonly labels: readonly number[];
  /** Arrival number of each sample, one per sample; larger is newer. */
  readonly arrivals: readonly number[];
}

/**
 * Recent test samples, balanced over classes. A full memory makes room for a new sample by dropping the
 * oldest sample of the class with the most samples, or of the new sample's own class when that class is
 * among the largest. A stream whose batches contain one or two classes then still gives the adapters a
 * memory that spans the classes seen recently.
 */
export class BalancedMemory {
  readonly capacity: number;
  #samples: tf.Tensor | undefined;
  /** The values of `#samples`, kept on the host: copying rows there is faster than the wasm backend's gather. */
  #values: Float32Array | undefined;
  #slots: Slot[] = [];
  #arrivals = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new InputError(`Invalid memory capacity: ${capacity}; pass a positive integer.`);
    }
    this.capacity = capacity;
  }

  /** Samples stored, at most the capacity. */
  get size(): number {
    return this.#slots.length;
  }

  /** The stored samples, oldest first, or undefined when the memory is empty. The memory owns the tensor. */
  get samples(): tf.Tensor | undefined {
    return this.#samples;
  }

  /** The class of each stored sample, in the order of `samples`. */
  get labels(): number[] {
    return this.#slots.map((slot) => slot.label);
  }

  /**
   * Stores the samples of a batch in order, each filed under its entry of `labels` (for example the frozen
   * model's predicted class). The tensor of the previous contents is disposed. Returns where each new row came from.
   */
  add(batch: tf.Tensor, labels: ArrayLike<number>): MemoryUpdate {
    const count = batch.shape[0] ?? 0;
    if (labels.length !== count) {
      throw new InputError(`Invalid memory input: ${labels.length} labels for a batch of ${count} samples; pass one label per sample.`);
    }
    const badLabel = Array.from(labels).findIndex((label) => !Number.isInteger(label) || label < 0);
    if (badLabel >= 0) {
      throw new InputError(`Invalid memory input: label ${labels[badLabel]} at index ${badLabel}; pass class indices, integers of at least 0.`);
    }
    const stored = this.#samples?.shape.slice(1);
    const incoming = batch.shape.slice(1);
    if (stored !== undefined && stored.join(',') !== incoming.join(',')) {
      throw new InputError(
        `Invalid memory input: samples of shape [${incoming.join(', ')}], but the memory stores samples of shape [${stored.join(', ')}]; pass batches of one sample shape.`,
      );
    }
    const storedCount = this.#slots.length;
    // Rows of the previous contents come first, then the batch's rows.
    let slots = [...this.#slots];
    for (let index = 0; index < count; index++) {
      const slot: Slot = { row: storedCount + index, label: labels[index] as number, arrival: this.#arrivals++ };
      if (slots.length >= this.capacity) {
        slots = withoutSlot(slots, evictionVictim(slots, slot.label));
      }
      slots.push(slot);
    }
    slots.sort((first, second) => first.arrival - second.arrival);

    const sampleSize = incoming.reduce((product, size) => product * size, 1);
    const batchValues = batch.dataSync();
    const values = new Float32Array(slots.length * sampleSize);
    slots.forEach((slot, row) => {
      const source = slot.row < storedCount ? (this.#values as Float32Array) : batchValues;
      const start = (slot.row < storedCount ? slot.row : slot.row - storedCount) * sampleSize;
      values.set(source.subarray(start, start + sampleSize), row * sampleSize);
    });
    this.#replaceContents(values, [slots.length, ...incoming]);
    this.#slots = slots.map((slot, row) => ({ ...slot, row }));
    return { sources: slots.map((slot) => slot.row), previousCount: storedCount };
  }

  /** Returns the contents as plain values. */
  exportState(): MemoryState | undefined {
    if (this.#samples === undefined) {
      return undefined;
    }
    return {
      shape: [...this.#samples.shape],
      values: Array.from(this.#values ?? []),
      labels: this.#slots.map((slot) => slot.label),
      arrivals: this.#slots.map((slot) => slot.arrival),
    };
  }

  /**
   * Replaces the contents with a state from exportState. Raises an InputError, and keeps the contents, when the
   * state does not fit samples of `sampleShape` and labels below `classes`.
   */
  importState(state: MemoryState, sampleShape: readonly number[], classes: number): void {
    const problem = findStateProblem(state, sampleShape, classes, this.capacity);
    if (problem !== undefined) {
      throw new InputError(`Invalid checkpoint: its sample memory ${problem}.`);
    }
    this.dispose();
    this.#replaceContents(Float32Array.from(state.values), state.shape);
    this.#slots = state.labels.map((label, row) => ({ row, label, arrival: state.arrivals[row] as number }));
    this.#arrivals = Math.max(...state.arrivals) + 1;
  }

  // Makes `values` the contents; the new tensor copies them, and the array is never written again.
  #replaceContents(values: Float32Array, shape: readonly number[]): void {
    const samples = tf.tensor(values, [...shape], 'float32');
    this.#samples?.dispose();
    this.#samples = samples;
    this.#values = values;
  }

  /** Empties the memory. */
  dispose(): void {
    this.#samples?.dispose();
    this.#samples = undefined;
    this.#values = undefined;
    this.#slots = [];
    this.#arrivals = 0;
  }
}

/** Returns the warning for a memory smaller than a batch of `batchSize` samples, or undefined when none is due. */
export function smallMemoryWarning(memorySize: number, batchSize: number): string | undefined {
  if (memorySize === 0 || memorySize >= batchSize) {
    return undefined;
  }
  return `memory_size ${memorySize} is smaller than the batch of ${batchSize} samples, so the adapters train on ${memorySize} samples of it; set memory_size to at least the batch size.`;
}

// Returns what is wrong with a memory state, or undefined when it fits.
function findStateProblem(state: MemoryState, sampleShape: readonly number[], classes: number, capacity: number): string | undefined {
  const [count = 0, ...rest] = state.shape;
  if (rest.join(',') !== sampleShape.join(',')) {
    return `stores samples of shape [${rest.join(', ')}], expected [${sampleShape.join(', ')}]`;
  }
  if (count < 1 || count > capacity) {
    return `has ${count} samples, expected 1 to ${capacity} (memory_size)`;
  }
  const perSample = rest.reduce((product, size) => product * size, 1);
  if (state.values.length !== count * perSample) {
    return `has ${state.values.length} values, expected ${count * perSample} for shape [${state.shape.join(', ')}]`;
  }
  if (state.labels.length !== count || state.arrivals.length !== count) {
    return `has ${state.labels.length} labels and ${state.arrivals.length} arrivals, expected ${count} of each`;
  }
  const badLabel = state.labels.findIndex((label) => !Number.isInteger(label) || label < 0 || label >= classes);
  if (badLabel >= 0) {
    return `has label ${state.labels[badLabel]} at index ${badLabel}, expected a class index from 0 to ${classes - 1}`;
  }
  const badArrival = state.arrivals.findIndex((arrival, index) => !Number.isInteger(arrival) || arrival < 0 || (index > 0 && arrival <= (state.arrivals[index - 1] as number)));
  if (badArrival >= 0) {
    return `has arrival ${state.arrivals[badArrival]} at index ${badArrival}, expected integers of at least 0 in increasing order`;
  }
  return undefined;
}

// Returns the slot to drop for a new sample of class `label`: the oldest of the new sample's class when it is
// among the largest classes, else the oldest sample of the largest classes.
function evictionVictim(slots: readonly Slot[], label: number): Slot {
  const counts = new Map<number, number>();
  for (const slot of slots) {
    counts.set(slot.label, (counts.get(slot.label) ?? 0) + 1);
  }
  const largest = Math.max(...counts.values());
  const ownClassIsLargest = counts.get(label) === largest;
  let victim: Slot | undefined;
  for (const slot of slots) {
    const candidate = ownClassIsLargest ? slot.label === label : counts.get(slot.label) === largest;
    if (candidate && (victim === undefined || slot.arrival < victim.arrival)) {
      victim = slot;
    }
  }
  return victim as Slot;
}

function withoutSlot(slots: readonly Slot[], victim: Slot): Slot[] {
  return slots.filter((slot) => slot !== victim);
}
