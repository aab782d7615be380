import * as tf from '@tensorflow/tfjs';

import type { RunRecord, SafeMetaNet } from '@safe-metanet/core';

import { sliceSplit } from './source-model.js';

/** A labelled stream of images, flattened in the backbone's input layout. */
export interface ImageStream {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/**
 * Streams `stream` through the runner in batches; the labels only score each batch.
 * A last batch smaller than `batchSize` is dropped, so that every batch has the same size.
 */
export function adaptStream(
  runner: SafeMetaNet,
  stream: ImageStream,
  batchSize: number,
  onRecord: (record: RunRecord, batchIndex: number, batches: number) => void = () => undefined,
): RunRecord[] {
  const inputShape = runner.backbone.inputShape;
  const sampleSize = inputShape.reduce((product, size) => product * size, 1);
  const batches = Math.floor(stream.count / batchSize);
  const records: RunRecord[] = [];

  for (let index = 0; index < batches; index++) {
    const batch = sliceSplit(stream, index * batchSize, batchSize, sampleSize);
    const inputs = tf.tensor(batch.inputs, [batch.count, ...inputShape]);
    try {
      const record = runner.step(inputs, batch.labels);
      records.push(record);
      onRecord(record, index, batches);
    } finally {
      inputs.dispose();
    }
  }
  return records;
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
