import type * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

function isTensor(value: tf.Tensor | ArrayLike<number>): value is tf.Tensor {
  return typeof (value as tf.Tensor).dataSync === 'function';
}

function valuesOf(value: tf.Tensor | ArrayLike<number>): ArrayLike<number> {
  return isTensor(value) ? (value.dataSync() as ArrayLike<number>) : value;
}

/**
 * Asserts that two tensors or arrays agree element-wise: |actual - expected| <= relativeTolerance *
 * max(1, |expected|) at every index, so the tolerance is absolute for values below 1 in magnitude.
 * Two NaNs, or two infinities of the same sign, count as equal. When both arguments are tensors their
 * shapes must match too. A failure names the first bad index with both values. The tensors are read
 * with dataSync and not disposed.
 */
export function expectTensorClose(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
  relativeTolerance: number,
): void {
  if (!Number.isFinite(relativeTolerance) || relativeTolerance < 0) {
    throw new RangeError(`relativeTolerance must be a finite number >= 0, but got ${relativeTolerance}.`);
  }
  if (isTensor(actual) && isTensor(expected)) {
    expect(actual.shape, 'tensor shape').toEqual(expected.shape);
  }

  const actualValues = valuesOf(actual);
  const expectedValues = valuesOf(expected);
  expect(actualValues.length, 'number of elements').toBe(expectedValues.length);

  for (let index = 0; index < expectedValues.length; ++index) {
    const actualValue = actualValues[index] as number;
    const expectedValue = expectedValues[index] as number;
    if (Object.is(actualValue, expectedValue) || (Number.isNaN(actualValue) && Number.isNaN(expectedValue))) {
      continue;
    }
    const allowed = relativeTolerance * Math.max(1, Math.abs(expectedValue));
    // A NaN or an infinity on one side only makes the difference NaN or Infinity, which fails here.
    if (!(Math.abs(actualValue - expectedValue) <= allowed)) {
      expect.fail(
        `Element ${index} of ${expectedValues.length} differs: actual ${actualValue}, expected ${expectedValue}, ` +
          `difference ${Math.abs(actualValue - expectedValue)} exceeds ${allowed} (relative tolerance ${relativeTolerance}).`,
      );
    }
  }
}
