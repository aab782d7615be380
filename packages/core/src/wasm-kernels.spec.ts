import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { selectBackend } from './backend.js';
import { InputError } from './errors.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { expectTensorClose } from './test-support/expect-tensor-close.js';
import { registerWasmKernels } from './wasm-kernels.js';

// wasm and cpu both compute in float32 but sum in different orders.
const RELATIVE_TOLERANCE = 1e-4;

type Shape4D = [number, number, number, number];
type Padding = 'same' | 'valid';

/** Draws seeded standard-normal values. The same seed gives the same values on every backend. */
function randomValues(shape: Shape4D, seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
}

function wasmDataIdCount(): number {
  return tf.engine().backend.numDataIds();
}

/** Runs compute on a backend inside tf.tidy and checks that it leaves no tensor behind. */
async function runOn<T extends tf.TensorContainer>(backendName: 'cpu' | 'wasm', compute: () => T): Promise<T> {
  expect(await tf.setBackend(backendName)).toBe(true);
  const tensorsBefore = tf.memory().numTensors;
  const dataIdsBefore = tf.engine().backend.numDataIds();

  const result = tf.tidy(compute);

  expect(tf.memory().numTensors, `tensors left on ${backendName}`).toBe(tensorsBefore);
  expect(tf.engine().backend.numDataIds(), `data ids left on ${backendName}`).toBe(dataIdsBefore);
  return result;
}

let fetchCallsDuringWasmLoad = 0;

beforeAll(async () => {
  tf.env().set('PROD', true);
  // In Node, tfjs-backend-wasm 4.22.0 reads its binary from the installed package with fs. It calls
  // fetch only in a browser or after setWasmPaths(prefix, true), which would need the network.
  const fetchSpy = vi.spyOn(globalThis, 'fetch');
  try {
    await selectBackend('wasm', silentLogger);
    fetchCallsDuringWasmLoad = fetchSpy.mock.calls.length;
  } finally {
    fetchSpy.mockRestore();
  }
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('selectBackend wasm', () => {
  it('loads the binary without fetch', () => {
    expect(fetchCallsDuringWasmLoad).toBe(0);
  });

  it('rejects an unknown backend name', async () => {
    const promise = selectBackend('gpu' as unknown as 'cpu', silentLogger);

    await expect(promise).rejects.toThrow("Invalid value for 'backend': \"gpu\"; expected one of auto, tensorflow, wasm, cpu.");
    expect(tf.getBackend()).toBe('wasm');
  });

  it('activates wasm and logs it', async () => {
    const messages: string[] = [];
    const logger: Logger = { ...silentLogger, info: (message) => messages.push(message) };

    const active = await selectBackend('wasm', logger);

    expect(active).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(messages).toEqual(['backend: wasm (requested)']);
  });
});

interface ConvCase {
  readonly title: string;
  readonly batch: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly pad: Padding;
}

// Height 10 and width 9 keep the two axes apart and give 'same' padding with stride 2 an uneven split.
const CONV_HEIGHT = 10;
const CONV_WIDTH = 9;
// Five output channels, an odd count, keep the output axis apart from the others. Sixteen input channels
// with one output channel make the filter gradient unroll dy over the input pixels in place of im2col.
const OUT_CHANNELS_BY_IN_CHANNELS: Readonly<Record<number, number>> = { 1: 5, 3: 5, 16: 1 };

const CONV_CASES: ConvCase[] = [];
for (const stride of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    for (const inChannels of [1, 3, 16]) {
      for (const kernelSize of [1, 3, 5]) {
        for (const batch of [1, 5]) {
          CONV_CASES.push({
            title: `stride ${stride}, ${pad}, ${kernelSize}x${kernelSize} kernel, ${inChannels} in-channels, batch ${batch}`,
            batch,
            inChannels,
            outChannels: OUT_CHANNELS_BY_IN_CHANNELS[inChannels] ?? 5,
            kernelSize,
            stride,
            pad,
          });
        }
      }
    }
  }
}

// A type alias, unlike an interface, is assignable to the index signature of tf.TensorContainer.
type ConvGradients = {
  readonly dx: Float32Array;
  readonly df: Float32Array;
};

function conv2dGradients(
  testCase: ConvCase,
  xValues: Float32Array,
  filterValues: Float32Array,
  weightValues: Float32Array,
): ConvGradients {
  const xShape: Shape4D = [testCase.batch, CONV_HEIGHT, CONV_WIDTH, testCase.inChannels];
  const filterShape: Shape4D = [testCase.kernelSize, testCase.kernelSize, testCase.inChannels, testCase.outChannels];
  const x = tf.tensor4d(xValues, xShape);
  const filter = tf.tensor4d(filterValues, filterShape);

  const loss = (xInput: tf.Tensor, filterInput: tf.Tensor): tf.Scalar => {
    const y = tf.conv2d(xInput as tf.Tensor4D, filterInput as tf.Tensor4D, testCase.stride, testCase.pad);
    return y.mul(tf.tensor(weightValues, y.shape)).sum();
  };
  const [dx, df] = tf.grads(loss)([x, filter]);

  return { dx: (dx as tf.Tensor).dataSync() as Float32Array, df: (df as tf.Tensor).dataSync() as Float32Array };
}

describe('Conv2D gradients on wasm', () => {
  for (const testCase of CONV_CASES) {
    it(`matches cpu: ${testCase.title}`, async () => {
      const xShape: Shape4D = [testCase.batch, CONV_HEIGHT, CONV_WIDTH, testCase.inChannels];
      const filterShape: Shape4D = [testCase.kernelSize, testCase.kernelSize, testCase.inChannels, testCase.outChannels];
      const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, testCase.stride, 1, testCase.pad);
      const xValues = randomValues(xShape, 11);
      const filterValues = randomValues(filterShape, 12);
      const weightValues = randomValues(info.outShape, 13);

      const expected = await runOn('cpu', () => conv2dGradients(testCase, xValues, filterValues, weightValues));
      const actual = await runOn('wasm', () => conv2dGradients(testCase, xValues, filterValues, weightValues));

      expectTensorClose(actual.df, expected.df, RELATIVE_TOLERANCE);
      expectTensorClose(actual.dx, expected.dx, RELATIVE_TOLERANCE);
    });
  }

  it('filter gradient is not all zeros', async () => {
    // Guards the comparisons above against two backends that agree on a trivial result.
    const testCase: ConvCase = { title: 'nonzero check', batch: 5, inChannels: 3, outChannels: 5, kernelSize: 3, stride: 2, pad: 'same' };
    const xShape: Shape4D = [testCase.batch, CONV_HEIGHT, CONV_WIDTH, testCase.inChannels];
    const filterShape: Shape4D = [testCase.kernelSize, testCase.kernelSize, testCase.inChannels, testCase.outChannels];
    const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, testCase.stride, 1, testCase.pad);
    const xValues = randomValues(xShape, 21);
    const filterValues = randomValues(filterShape, 22);
    const weightValues = randomValues(info.outShape, 23);

    const gradients = await runOn('wasm', () => conv2dGradients(testCase, xValues, filterValues, weightValues));

    expect(gradients.df.some((value) => Math.abs(value) > 1e-3)).toBe(true);
  });
});

describe('Conv2D gradients on wasm over many pixels', () => {
  it('keeps filter sums precise', async () => {
    // Each filter gradient element sums 2 * 100 * 100 products. One float32 sum of that length
    // drifts past the tolerance on elements that nearly cancel.
    const xShape: Shape4D = [2, 100, 100, 8];
    const dyShape: Shape4D = [2, 100, 100, 2];
    const filterShape: Shape4D = [3, 3, 8, 2];
    const xValues = randomValues(xShape, 41);
    const filterValues = randomValues(filterShape, 42);
    const dyValues = randomValues(dyShape, 43);
    const gradients = (): ConvGradients => {
      const x = tf.tensor4d(xValues, xShape);
      const dy = tf.tensor4d(dyValues, dyShape);
      const filter = tf.tensor4d(filterValues, filterShape);
      const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC' };
      const df = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape }) as tf.Tensor;
      const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...attrs, inputShape: xShape }) as tf.Tensor;
      return { dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array };
    };

    const expected = await runOn('cpu', gradients);
    const actual = await runOn('wasm', gradients);

    expectTensorClose(actual.df, expected.df, RELATIVE_TOLERANCE);
    expectTensorClose(actual.dx, expected.dx, RELATIVE_TOLERANCE);
  }, 30_000);
});

describe('Conv2DBackpropInput on wasm', () => {
  const validAttrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: [1, 5, 5, 2] };

  function runInputKernel(
    attrs: Record<string, unknown>,
    dyShape: Shape4D = [1, 3, 3, 4],
    filterShape: Shape4D = [3, 3, 2, 4],
    dtype: 'float32' | 'int32' = 'float32',
  ): void {
    tf.tidy(() => {
      const dy = tf.zeros(dyShape, dtype);
      const filter = tf.zeros(filterShape, dtype);
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, attrs as unknown as tf.NamedAttrMap);
    });
  }

  async function expectInputError(run: () => void, fragment: string): Promise<void> {
    expect(await tf.setBackend('wasm')).toBe(true);
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = wasmDataIdCount();

    expect(run).toThrow(InputError);
    expect(run).toThrow(fragment);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(wasmDataIdCount()).toBe(dataIdsBefore);
  }

  it('accepts valid attributes', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);

    expect(() => runInputKernel(validAttrs)).not.toThrow();
  });

  it('rejects dilation above 1', async () => {
    await expectInputError(() => runInputKernel({ ...validAttrs, dilations: [2, 2] }), 'dilations 1');
  });

  it('rejects a dy of the wrong shape', async () => {
    await expectInputError(() => runInputKernel(validAttrs, [1, 4, 4, 4]), '[1, 3, 3, 4]');
  });

  it('rejects int32 input', async () => {
    await expectInputError(() => runInputKernel(validAttrs, [1, 3, 3, 4], [3, 3, 2, 4], 'int32'), 'float32');
  });

  it('rejects a mismatched input depth', async () => {
    await expectInputError(() => runInputKernel({ ...validAttrs, inputShape: [1, 5, 5, 3] }), '[1, 5, 5, 3]');
  });

  it('passes NCHW to the packaged kernel', async () => {
    const dyValues = randomValues([2, 4, 3, 3], 51);
    const filterValues = randomValues([3, 3, 2, 4], 52);
    const inputGradient = (): Float32Array => {
      const dy = tf.tensor4d(dyValues, [2, 4, 3, 3]);
      const filter = tf.tensor4d(filterValues, [3, 3, 2, 4]);
      const attrs = { strides: 1, pad: 'valid', dataFormat: 'NCHW', inputShape: [2, 2, 5, 5] };
      const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, attrs) as tf.Tensor;
      return dx.dataSync() as Float32Array;
    };

    const expected = await runOn('cpu', inputGradient);
    const actual = await runOn('wasm', inputGradient);

    expectTensorClose(actual, expected, RELATIVE_TOLERANCE);
  });
});

type PoolData = 'random' | 'all negative' | 'ties';

interface PoolCase {
  readonly title: string;
  readonly data: PoolData;
  readonly filterSize: number;
  readonly stride: number;
  readonly pad: Padding;
}

const POOL_SHAPE: Shape4D = [2, 7, 6, 3];

const POOL_CASES: PoolCase[] = [];
for (const data of ['random', 'all negative', 'ties'] as const) {
  for (const filterSize of [2, 3]) {
    // Stride 3 with a 3x3 window tiles the input, which the kernel handles in a loop of its own.
    for (const stride of [1, 2, 3]) {
      for (const pad of ['same', 'valid'] as const) {
        POOL_CASES.push({ title: `${data}, ${filterSize}x${filterSize} window, stride ${stride}, ${pad}`, data, filterSize, stride, pad });
      }
    }
  }
}

function poolInput(data: PoolData): Float32Array {
  const values = randomValues(POOL_SHAPE, 31);
  if (data === 'all negative') {
    return values.map((value) => -1 - Math.abs(value));
  }
  if (data === 'ties') {
    // Values in {-1, 0, 1}, so most windows hold several equal maxima, some of them 0 or -1.
    return values.map((value) => Math.max(-1, Math.min(1, Math.round(value))));
  }
  return values;
}

function maxPoolGradient(testCase: PoolCase, xValues: Float32Array, weightValues: Float32Array): Float32Array {
  const x = tf.tensor4d(xValues, POOL_SHAPE);
  const loss = (input: tf.Tensor): tf.Scalar => {
    const y = tf.maxPool(input as tf.Tensor4D, testCase.filterSize, testCase.stride, testCase.pad);
    return y.mul(tf.tensor(weightValues, y.shape)).sum();
  };
  return tf.grad(loss)(x).dataSync() as Float32Array;
}

describe('MaxPool gradient on wasm', () => {
  for (const testCase of POOL_CASES) {
    it(`matches cpu: ${testCase.title}`, async () => {
      const info = tf.backend_util.computePool2DInfo(POOL_SHAPE, testCase.filterSize, testCase.stride, 1, testCase.pad);
      const xValues = poolInput(testCase.data);
      const weightValues = randomValues(info.outShape, 32);

      const expected = await runOn('cpu', () => maxPoolGradient(testCase, xValues, weightValues));
      const actual = await runOn('wasm', () => maxPoolGradient(testCase, xValues, weightValues));

      expectTensorClose(actual, expected, RELATIVE_TOLERANCE);
    });
  }

  it('routes a negative window to its maximum', async () => {
    const dx = await runOn('wasm', () => {
      const x = tf.tensor4d([-3, -1, -2, -4], [1, 2, 2, 1]);
      return tf.grad((input: tf.Tensor) => tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid').mul(5).sum())(x).dataSync();
    });

    expect(Array.from(dx)).toEqual([0, 5, 0, 0]);
  });

  it('skips windows of NaN and -Infinity', async () => {
    const dx = await runOn('wasm', () => {
      // Two 2x2 windows side by side: one of NaN and -Infinity only, one whose maximum 3 follows a NaN.
      const x = tf.tensor4d([Number.NaN, -Infinity, Number.NaN, 3, Number.NaN, -Infinity, -Infinity, 2], [1, 2, 4, 1]);
      return tf.grad((input: tf.Tensor) => tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid').mul(5).sum())(x).dataSync();
    });

    expect(Array.from(dx)).toEqual([0, 0, 0, 5, 0, 0, 0, 0]);
  });

  it('gives a tie to the first maximum', async () => {
    const dx = await runOn('wasm', () => {
      const x = tf.tensor4d([1, 2, 2, 0], [1, 2, 2, 1]);
      return tf.grad((input: tf.Tensor) => tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid').mul(5).sum())(x).dataSync();
    });

    expect(Array.from(dx)).toEqual([0, 5, 0, 0]);
  });
});

describe('Conv2DBackpropFilter on wasm', () => {
  const validAttrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [3, 3, 2, 4] };

  function runFilterKernel(
    attrs: Record<string, unknown>,
    xShape: Shape4D = [1, 5, 5, 2],
    dyShape: Shape4D = [1, 3, 3, 4],
    dtype: 'float32' | 'int32' = 'float32',
  ): void {
    tf.tidy(() => {
      const x = tf.zeros(xShape, dtype);
      const dy = tf.zeros(dyShape, dtype);
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap);
    });
  }

  async function expectInputError(run: () => void, fragment: string): Promise<void> {
    expect(await tf.setBackend('wasm')).toBe(true);
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = wasmDataIdCount();

    expect(run).toThrow(InputError);
    expect(run).toThrow(fragment);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(wasmDataIdCount()).toBe(dataIdsBefore);
  }

  it('accepts valid attributes', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);

    expect(() => runFilterKernel(validAttrs)).not.toThrow();
  });

  it('rejects NCHW', async () => {
    await expectInputError(() => runFilterKernel({ ...validAttrs, dataFormat: 'NCHW' }), "'NCHW'");
  });

  it('rejects dilation above 1', async () => {
    await expectInputError(() => runFilterKernel({ ...validAttrs, dilations: [2, 2] }), 'dilations 1');
  });

  it('rejects a dy of the wrong shape', async () => {
    await expectInputError(() => runFilterKernel(validAttrs, [1, 5, 5, 2], [1, 4, 4, 4]), '[1, 3, 3, 4]');
  });

  it('rejects int32 input', async () => {
    await expectInputError(() => runFilterKernel(validAttrs, [1, 5, 5, 2], [1, 3, 3, 4], 'int32'), 'float32');
  });

  it('rejects a mismatched filter depth', async () => {
    await expectInputError(() => runFilterKernel({ ...validAttrs, filterShape: [3, 3, 5, 4] }), '[3, 3, 5, 4]');
  });
});

describe('MaxPoolGrad on wasm', () => {
  it('rejects a dy of the wrong shape', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const dataIdsBefore = wasmDataIdCount();
    const run = (): void => {
      tf.tidy(() => {
        const input = tf.zeros([1, 4, 4, 1]);
        const dy = tf.zeros([1, 3, 3, 1]);
        tf.engine().runKernel(tf.MaxPoolGrad, { dy, input, output: dy }, { filterSize: 2, strides: 2, pad: 'valid' });
      });
    };

    expect(run).toThrow(InputError);
    expect(run).toThrow('[1, 2, 2, 1]');
    expect(wasmDataIdCount()).toBe(dataIdsBefore);
  });
});

interface MatMulCase {
  readonly aShape: readonly number[];
  readonly bShape: readonly number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

// Inner size 7, rows 5 and columns 3 keep the axes apart; the rank-3 cases cover a batch and a broadcast one.
const MATMUL_CASES: MatMulCase[] = [];
for (const transposeA of [false, true]) {
  for (const transposeB of [false, true]) {
    for (const [aBatch, bBatch] of [[[], []], [[4], [4]], [[4], [1]], [[], [4]]] as const) {
      MATMUL_CASES.push({
        aShape: [...aBatch, ...(transposeA ? [7, 5] : [5, 7])],
        bShape: [...bBatch, ...(transposeB ? [3, 7] : [7, 3])],
        transposeA,
        transposeB,
      });
    }
  }
}

function seeded(shape: readonly number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal([...shape], 0, 1, 'float32', seed).dataSync() as Float32Array);
}

describe('BatchMatMul on wasm', () => {
  it.each(MATMUL_CASES)('matches cpu: a [$aShape] transposeA $transposeA, b [$bShape] transposeB $transposeB', async (testCase) => {
    const aValues = seeded(testCase.aShape, 31);
    const bValues = seeded(testCase.bShape, 32);
    const product = (): Float32Array =>
      tf
        .matMul(tf.tensor(aValues, [...testCase.aShape]), tf.tensor(bValues, [...testCase.bShape]), testCase.transposeA, testCase.transposeB)
        .dataSync() as Float32Array;

    const expected = await runOn('cpu', product);
    const actual = await runOn('wasm', product);

    expect(actual.length).toBe(expected.length);
    expect(expected.some((value) => Math.abs(value) > 0.1)).toBe(true);
    expectTensorClose(actual, expected, RELATIVE_TOLERANCE);
  });

  it('gives matMul gradients that match cpu', async () => {
    // The gradient of a product multiplies by transposed operands, which the replacement kernel serves.
    const aValues = seeded([6, 9], 41);
    const bValues = seeded([9, 4], 42);
    const weights = seeded([6, 4], 43);
    const gradients = (): tf.TensorContainer => {
      const loss = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D).mul(tf.tensor(weights, [6, 4])).sum();
      const [da, db] = tf.grads(loss)([tf.tensor(aValues, [6, 9]), tf.tensor(bValues, [9, 4])]);
      return [(da as tf.Tensor).dataSync() as Float32Array, (db as tf.Tensor).dataSync() as Float32Array];
    };

    const [expectedA, expectedB] = (await runOn('cpu', gradients)) as Float32Array[];
    const [actualA, actualB] = (await runOn('wasm', gradients)) as Float32Array[];

    expectTensorClose(actualA as Float32Array, expectedA as Float32Array, RELATIVE_TOLERANCE);
    expectTensorClose(actualB as Float32Array, expectedB as Float32Array, RELATIVE_TOLERANCE);
  });

  it('rejects mismatched inner sizes with the packaged message', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = wasmDataIdCount();

    expect(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]), false, true).dataSync())).not.toThrow();
    expect(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 3]), true, false))).toThrow(/inner shapes \(2\) and \(4\)/);

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(wasmDataIdCount()).toBe(dataIdsBefore);
  });
});

describe('registerWasmKernels', () => {
  it('can be called twice', () => {
    const names = [tf.BatchMatMul, tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.MaxPoolGrad];
    const before = names.map((name) => tf.getKernel(name, 'wasm').kernelFunc);

    expect(() => registerWasmKernels()).not.toThrow();
    expect(() => registerWasmKernels()).not.toThrow();

    expect(names.map((name) => tf.getKernel(name, 'wasm').kernelFunc)).toEqual(before);
  });

  it('prints no warning when called again', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    // Production mode hides tfjs warnings, so it is switched off to let a re-registration warning through.
    tf.env().set('PROD', false);
    try {
      registerWasmKernels();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      tf.env().set('PROD', true);
      warn.mockRestore();
    }
  });
});

describe('expectTensorClose', () => {
  it('accepts values within tolerance', () => {
    expect(() => expectTensorClose([1, 200, 0.5], [1.00005, 200.01, 0.50009], 1e-4)).not.toThrow();
  });

  it('names the first bad index', () => {
    expect(() => expectTensorClose([1, 2, 3, 4], [1, 2.1, 3, 4.5], 1e-3)).toThrow(
      'Element 1 of 4 differs: actual 2, expected 2.1',
    );
  });

  it('treats NaN as equal only to NaN', () => {
    expect(() => expectTensorClose([Number.NaN, 1], [Number.NaN, 1], 1e-4)).not.toThrow();
    expect(() => expectTensorClose([Number.NaN], [0], 1e-4)).toThrow('Element 0 of 1');
  });

  it('rejects a length mismatch', () => {
    expect(() => expectTensorClose([1, 2], [1, 2, 3], 1e-4)).toThrow('number of elements');
  });

  it('rejects a shape mismatch', () => {
    const tensorsBefore = tf.memory().numTensors;
    const actual = tf.zeros([2, 3]);
    const expected = tf.zeros([3, 2]);

    expect(() => expectTensorClose(actual, expected, 1e-4)).toThrow('tensor shape');

    tf.dispose([actual, expected]);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('rejects a negative tolerance', () => {
    expect(() => expectTensorClose([1], [1], -1)).toThrow(RangeError);
  });
});
