import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { InputError } from './errors.js';

/*
 * Replacement kernels for the wasm backend of @tensorflow/tfjs-backend-wasm 4.22.0, written as plain
 * typed-array loops over the wasm heap. The math follows the cpu backend of the same version, so
 * results on the two backends agree to float32 rounding.
 */

const WASM = 'wasm';

type Shape4D = [number, number, number, number];

function sameShape(actual: readonly number[], expected: readonly number[]): boolean {
  return actual.length === expected.length && actual.every((size, axis) => size === expected[axis]);
}

function requireFloat32(kernelName: string, inputName: string, tensor: tf.TensorInfo): void {
  if (tensor.dtype !== 'float32') {
    throw new InputError(
      `${kernelName} on the wasm backend requires a float32 '${inputName}', but got dtype '${tensor.dtype}'. Cast it with tf.cast(${inputName}, 'float32').`,
    );
  }
}

function requireRank4(kernelName: string, inputName: string, tensor: tf.TensorInfo): Shape4D {
  if (tensor.shape.length !== 4) {
    throw new InputError(
      `${kernelName} on the wasm backend requires a rank-4 NHWC '${inputName}', but got shape [${tensor.shape.join(', ')}]. Reshape it to [batch, height, width, channels].`,
    );
  }
  return tensor.shape as Shape4D;
}

/**
 * Computes the conv2d filter gradient dW[wR, wC, d1, d2] = sum over b, yR, yC of
 * x[b, yR * strideHeight + wR - padTop, yC * strideWidth + wC - padLeft, d1] * dy[b, yR, yC, d2],
 * skipping taps that fall in the padding. Both inputs are NHWC with dilation 1. Sums are kept in
 * float64, as the cpu backend keeps them, and rounded to float32 once at the end.
 */
function conv2dFilterGradient(x: Float32Array, dy: Float32Array, info: tf.backend_util.Conv2DInfo): Float64Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const filterTapSize = inChannels * outChannels;
  const sums = new Float64Array(filterHeight * filterWidth * filterTapSize);
  // One dy pixel, copied out of the heap once and reused for every filter tap it touches.
  const dyPixel = new Float64Array(outChannels);
  const unrolledEnd = outChannels - (outChannels % 4);

  // Each (b, yR, yC) adds the outer product of one x pixel (inChannels values) and one dy pixel
  // (outChannels values) to every filter tap, so the innermost loop runs over contiguous memory.
  // It is unrolled by 4, which ran about twice as fast as the plain loop in Node 20 on a 2-core AMD EPYC
  // (x [64, 28, 28, 16], dy [64, 28, 28, 32], 3x3 filter).
  for (let b = 0; b < batchSize; ++b) {
    for (let yR = 0; yR < outHeight; ++yR) {
      const xRowStart = yR * strideHeight - padTop;
      const wRMin = Math.max(0, -xRowStart);
      const wRMax = Math.min(filterHeight, inHeight - xRowStart);

      for (let yC = 0; yC < outWidth; ++yC) {
        const xColumnStart = yC * strideWidth - padLeft;
        const wCMin = Math.max(0, -xColumnStart);
        const wCMax = Math.min(filterWidth, inWidth - xColumnStart);
        const dyOffset = ((b * outHeight + yR) * outWidth + yC) * outChannels;
        for (let d2 = 0; d2 < outChannels; ++d2) {
          dyPixel[d2] = dy[dyOffset + d2] as number;
        }

        for (let wR = wRMin; wR < wRMax; ++wR) {
          const xRowOffset = (b * inHeight + xRowStart + wR) * inWidth;
          for (let wC = wCMin; wC < wCMax; ++wC) {
            const xOffset = (xRowOffset + xColumnStart + wC) * inChannels;
            const tapOffset = (wR * filterWidth + wC) * filterTapSize;

            for (let d1 = 0; d1 < inChannels; ++d1) {
              const xValue = x[xOffset + d1] as number;
              const sumOffset = tapOffset + d1 * outChannels;
              let d2 = 0;
              for (; d2 < unrolledEnd; d2 += 4) {
                const sumIndex = sumOffset + d2;
                (sums[sumIndex] as number) += xValue * (dyPixel[d2] as number);
                (sums[sumIndex + 1] as number) += xValue * (dyPixel[d2 + 1] as number);
                (sums[sumIndex + 2] as number) += xValue * (dyPixel[d2 + 2] as number);
                (sums[sumIndex + 3] as number) += xValue * (dyPixel[d2 + 3] as number);
              }
              for (; d2 < outChannels; ++d2) {
                (sums[sumOffset + d2] as number) += xValue * (dyPixel[d2] as number);
              }
            }
          }
        }
      }
    }
  }
  return sums;
}

function conv2DBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const kernelName = tf.Conv2DBackpropFilter;
  const { x, dy } = inputs as tf.Conv2DBackpropFilterInputs;
  if (x === undefined || dy === undefined) {
    throw new InputError(`${kernelName} on the wasm backend requires inputs 'x' and 'dy'. Pass both to the kernel.`);
  }
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  // The kernel has no dilations attribute in tfjs 4.22.0, but a caller that sets one gets an error
  // in place of a gradient computed as if the dilation were 1.
  const dilations = (attrs as { dilations?: number | [number, number] } | undefined)?.dilations ?? 1;

  if (dataFormat !== 'NHWC') {
    throw new InputError(
      `${kernelName} on the wasm backend supports only dataFormat 'NHWC', but got '${String(dataFormat)}'. Transpose x and dy to NHWC or use the cpu backend.`,
    );
  }
  if (!tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new InputError(
      `${kernelName} on the wasm backend supports only dilations 1, but got ${JSON.stringify(dilations)}. Use dilations 1 or the cpu backend.`,
    );
  }
  requireFloat32(kernelName, 'x', x);
  requireFloat32(kernelName, 'dy', dy);
  const xShape = requireRank4(kernelName, 'x', x);
  requireRank4(kernelName, 'dy', dy);
  if (filterShape.length !== 4 || filterShape[2] !== xShape[3]) {
    throw new InputError(
      `${kernelName} on the wasm backend requires filterShape [height, width, ${xShape[3]}, outChannels] to match the ${xShape[3]} channels of x, but got [${filterShape.join(', ')}].`,
    );
  }

  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const expectedDyShape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (!sameShape(dy.shape, expectedDyShape)) {
    throw new InputError(
      `${kernelName} on the wasm backend expected dy of shape [${expectedDyShape.join(', ')}] for x [${xShape.join(', ')}] and filter [${filterShape.join(', ')}], but got [${dy.shape.join(', ')}].`,
    );
  }

  const wasm = backend as BackendWasm;
  const sums = conv2dFilterGradient(
    wasm.typedArrayFromHeap(x) as Float32Array,
    wasm.typedArrayFromHeap(dy) as Float32Array,
    info,
  );

  // makeOutput may grow the wasm heap, which detaches every view taken before it, so the input
  // views above are not used after this point.
  const output = wasm.makeOutput([...filterShape], 'float32');
  (wasm.typedArrayFromHeap(output) as Float32Array).set(sums);
  return output;
}

/**
 * Adds each dy value to dx at the position of the maximum of its pooling window. Within a window the
 * first maximum in row-major order wins and padding never does, as in the cpu backend, so a window
 * that holds only NaN or -Infinity passes no gradient. dx must be zero on entry.
 */
function scatterMaxPoolGradient(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight, effectiveFilterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const maxValues = new Float64Array(inChannels);
  const maxIndices = new Int32Array(inChannels);

  for (let b = 0; b < batchSize; ++b) {
    for (let yR = 0; yR < outHeight; ++yR) {
      const xRowStart = yR * strideHeight - padTop;
      const xRowMin = Math.max(0, xRowStart);
      const xRowMax = Math.min(inHeight, xRowStart + effectiveFilterHeight);

      for (let yC = 0; yC < outWidth; ++yC) {
        const xColumnStart = yC * strideWidth - padLeft;
        const xColumnMin = Math.max(0, xColumnStart);
        const xColumnMax = Math.min(inWidth, xColumnStart + effectiveFilterWidth);
        maxValues.fill(Number.NEGATIVE_INFINITY);
        maxIndices.fill(-1);

        for (let xR = xRowMin; xR < xRowMax; ++xR) {
          for (let xC = xColumnMin; xC < xColumnMax; ++xC) {
            const xOffset = ((b * inHeight + xR) * inWidth + xC) * inChannels;
            for (let d = 0; d < inChannels; ++d) {
              const value = x[xOffset + d] as number;
              if (value > (maxValues[d] as number)) {
                maxValues[d] = value;
                maxIndices[d] = xOffset + d;
              }
            }
          }
        }

        const dyOffset = ((b * outHeight + yR) * outWidth + yC) * inChannels;
        for (let d = 0; d < inChannels; ++d) {
          const maxIndex = maxIndices[d] as number;
          if (maxIndex >= 0) {
            (dx[maxIndex] as number) += dy[dyOffset + d] as number;
          }
        }
      }
    }
  }
}

function maxPoolGrad({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const kernelName = tf.MaxPoolGrad;
  const { dy, input } = inputs as tf.MaxPoolGradInputs;
  if (dy === undefined || input === undefined) {
    throw new InputError(`${kernelName} on the wasm backend requires inputs 'dy' and 'input'. Pass both to the kernel.`);
  }
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;

  requireFloat32(kernelName, 'input', input);
  requireFloat32(kernelName, 'dy', dy);
  const xShape = requireRank4(kernelName, 'input', input);
  const info = tf.backend_util.computePool2DInfo(xShape, filterSize, strides, 1, pad, dimRoundingMode);
  if (!sameShape(dy.shape, info.outShape)) {
    throw new InputError(
      `${kernelName} on the wasm backend expected dy of shape [${info.outShape.join(', ')}] for input [${xShape.join(', ')}], but got [${dy.shape.join(', ')}].`,
    );
  }

  // The output is allocated first because makeOutput may grow the wasm heap and detach older views.
  const wasm = backend as BackendWasm;
  const output = wasm.makeOutput([...xShape], 'float32');
  const dx = wasm.typedArrayFromHeap(output) as Float32Array;
  // The wasm heap is not zeroed when memory is allocated.
  dx.fill(0);
  scatterMaxPoolGradient(
    wasm.typedArrayFromHeap(input) as Float32Array,
    wasm.typedArrayFromHeap(dy) as Float32Array,
    dx,
    info,
  );
  return output;
}

const REPLACEMENT_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: WASM, kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.MaxPoolGrad, backendName: WASM, kernelFunc: maxPoolGrad },
];

/**
 * Registers the kernels that the wasm backend of @tensorflow/tfjs-backend-wasm 4.22.0 lacks or gets
 * wrong. Conv2DBackpropFilter is missing. MaxPoolGrad starts each window's maximum at FLT_MIN
 * (tfjs-backend-wasm/src/cc/kernels/MaxPoolGrad.cc), so a window whose values are all at most 0 drops
 * its gradient or sends it to element 0 of the tensor. It also gives ties to the last maximum, where
 * the cpu backend gives them to the first.
 *
 * Call it after importing '@tensorflow/tfjs-backend-wasm', because that import registers the
 * package's own MaxPoolGrad and would replace this one. Calling it again is a no-op.
 *
 * @throws Error when '@tensorflow/tfjs-backend-wasm' has not been imported yet.
 */
export function registerWasmKernels(): void {
  if (tf.findBackendFactory(WASM) == null) {
    throw new Error(
      "The wasm backend is not registered, so its kernels cannot be replaced. Import '@tensorflow/tfjs-backend-wasm' before calling registerWasmKernels().",
    );
  }

  for (const config of REPLACEMENT_KERNELS) {
    const registered = tf.getKernel(config.kernelName, WASM) as tf.KernelConfig | undefined;
    if (registered?.kernelFunc === config.kernelFunc) {
      continue;
    }
    // Unregistering first avoids the warning that registerKernel prints when it overwrites a kernel.
    if (registered !== undefined) {
      tf.unregisterKernel(config.kernelName, WASM);
    }
    tf.registerKernel(config);
  }
}
