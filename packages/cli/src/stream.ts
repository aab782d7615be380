import * as tf from '@tensorflow/tfjs';

import type { RunRecord, SafeMetaNet } from '@safe-metanet/core';

import { sliceSplit } from './source-model.js';

/** A labelled stream of images, flattened in the backbone's input layout. */
export interface ImageStream {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/** Returns the number of batches of a stream; the last one contains the remainder and may be smaller. */
export function batchCount(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

// Runs batch `index` of the stream through the runner; the labels only score it.
function stepBatch(runner: SafeMetaNet, stream: ImageStream, batchSize: number, index: number): RunRecord {
  const inputShape = runner.backbone.inputShape;
  const sampleSize = inputShape.reduce((product, size) => product * size, 1);
  const start = index * batchSize;
  const batch = sliceSplit(stream, start, Math.min(batchSize, stream.count - start), sampleSize);
  const inputs = tf.tensor(batch.inputs, [batch.count, ...inputShape]);
  try {
    return runner.step(inputs, batch.labels);
  } finally {
    inputs.dispose();
  }
}

/**
 * Streams `stream` through the runner in batches of `batchSize`, the last one holding the remainder,
 * and returns the records; the labels only score each batch.
 */
export function adaptStream(
  runner: SafeMetaNet,
  stream: ImageStream,
  batchSize: number,
  onRecord: (record: RunRecord, batchIndex: number, batches: number) => void = () => undefined,
): RunRecord[] {
  const batches = batchCount(stream.count, batchSize);
  const records: RunRecord[] = [];

  for (let index = 0; index < batches; index++) {
    const record = stepBatch(runner, stream, batchSize, index);
    records.push(record);
    onRecord(record, index, batches);
  }
  return records;
}

/** Options of adaptStreamInterruptibly. */
export interface InterruptibleStreamOptions {
  /** Zero-based index of the first batch to process; earlier batches are skipped. */
  readonly startBatch: number;
  /** Called after each batch with its record, its index and the number of batches. */
  readonly onRecord: (record: RunRecord, batchIndex: number, batches: number) => void;
  /** Checked after each batch; when it returns true, the stream stops before the next batch. */
  readonly shouldStop: () => boolean;
}

/** Position at which an interruptible stream stopped. */
export interface StreamPosition {
  /** Zero-based index of the first batch not processed. */
  readonly nextBatch: number;
  /** Number of batches in the stream. */
  readonly batches: number;
}

/**
 * Streams batches like adaptStream from `startBatch` on, and yields to the event loop after each batch,
 * so that signal handlers run between batches and `shouldStop` can end the stream there.
 */
export async function adaptStreamInterruptibly(
  runner: SafeMetaNet,
  stream: ImageStream,
  batchSize: number,
  options: InterruptibleStreamOptions,
): Promise<StreamPosition> {
  const batches = batchCount(stream.count, batchSize);

  for (let index = options.startBatch; index < batches; index++) {
    options.onRecord(stepBatch(runner, stream, batchSize, index), index, batches);
    // runner.step is synchronous, so without this pause a signal would wait for the whole stream.
    await new Promise((resolve) => setImmediate(resolve));
    if (options.shouldStop()) {
      return { nextBatch: index + 1, batches };
    }
  }
  return { nextBatch: Math.max(batches, options.startBatch), batches };
}

/** Returns the batch-size-weighted error rate, in [0, 1], of the adapted or the frozen model over records. */
export function errorOf(records: readonly RunRecord[], model: 'adapted' | 'source'): number {
  let samples = 0;
  let correct = 0;
  for (const record of records) {
    const accuracy = model === 'adapted' ? record.accuracy : record.source_accuracy;
    if (accuracy === undefined) {
      continue;
    }
    samples += record.batch_size;
    correct += accuracy * record.batch_size;
  }
  return samples === 0 ? Number.NaN : 1 - correct / samples;
}
