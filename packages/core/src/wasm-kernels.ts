import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { InputError } from './errors.js';

/*
 * Replacement kernels for the wasm backend of @tensorflow/tfjs-backend-wasm 4.22.0. The convolution
 * gradients unroll their input with im2col in JS and run the matmul through the backend's own
 * BatchMatMul kernel (XNNPACK). MaxPoolGrad is a typed-array loop over the wasm heap. Results agree
 * with the cpu backend of the same version to float32 rounding.
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

/** Upper bound in bytes for the im2col buffer of one chunk of the batch. */
const IM2COL_CHUNK_BYTES = 64 * 1024 * 1024;

/** Returns how many samples of the batch fit in one im2col buffer of at most IM2COL_CHUNK_BYTES (at least one). */
function samplesPerChunk(info: tf.backend_util.Conv2DInfo): number {
  const bytesPerSample = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth * info.inChannels * 4;
  return Math.max(1, Math.min(info.batchSize, Math.floor(IM2COL_CHUNK_BYTES / bytesPerSample)));
}

/** The packaged kernels of tfjs-backend-wasm that a replacement hands some inputs to, by kernel name. */
const packagedKernels = new Map<string, tf.KernelConfig>();

function packagedKernel(kernelName: string): tf.KernelConfig {
  const kernel = packagedKernels.get(kernelName);
  if (kernel === undefined) {
    throw new Error(`The wasm backend's own ${kernelName} kernel is not registered. Import '@tensorflow/tfjs-backend-wasm' before calling registerWasmKernels().`);
  }
  return kernel;
}

/**
 * Multiplies two rank-2 float32 tensors, a [m, k] by b [k, n], with the packaged BatchMatMul kernel
 * of the wasm backend. The caller owns the returned data id and must free it with disposeData.
 */
function matMulOnWasm(wasm: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  return packagedKernel(tf.BatchMatMul).kernelFunc({ inputs: { a, b }, backend: wasm, attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo;
}

/** Returns x with its last two axes swapped, from the packaged Transpose kernel; the caller frees it with disposeData. */
function swapLastAxes(wasm: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return packagedKernel(tf.Transpose).kernelFunc({ inputs: { x }, backend: wasm, attrs: { perm } }) as tf.TensorInfo;
}

/**
 * BatchMatMul that runs every product through the packaged kernel's untransposed case. In
 * tfjs-backend-wasm 4.22.0 only that case reaches XNNPACK; with transposeA or transposeB set, the
 * packaged kernel runs a scalar loop. On a 2-core AMD EPYC (Node 20), [64, 256] x [256, 256]^T took
 * 3.7 ms against 0.35 ms untransposed, and the gradient of every matMul is such a product. The
 * replacement transposes the flagged operands with the packaged Transpose kernel first.
 */
function batchMatMul(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs as tf.BatchMatMulInputs;
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const packaged = packagedKernel(tf.BatchMatMul);
  if ((!transposeA && !transposeB) || a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') {
    // The packaged kernel reports missing inputs and other dtypes itself.
    return packaged.kernelFunc(args);
  }

  const wasm = backend as BackendWasm;
  const transposed: tf.TensorInfo[] = [];
  try {
    const left = transposeA ? swapLastAxes(wasm, a) : a;
    if (transposeA) {
      transposed.push(left);
    }
    const right = transposeB ? swapLastAxes(wasm, b) : b;
    if (transposeB) {
      transposed.push(right);
    }
    return packaged.kernelFunc({ inputs: { a: left, b: right }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
  } finally {
    for (const info of transposed) {
      wasm.disposeData(info.dataId);
    }
  }
}

/**
 * Writes the transpose of the row-major [rows, columns] matrix source into target, whose rows are
 * targetRowSize (at least rows) values apart.
 */
function transposeInto(source: Float32Array, target: Float32Array, rows: number, columns: number, targetRowSize = rows): void {
  for (let row = 0; row < rows; ++row) {
    const sourceOffset = row * columns;
    for (let column = 0; column < columns; ++column) {
      target[column * targetRowSize + row] = source[sourceOffset + column] as number;
    }
  }
}

/**
 * Copies the input patches of output pixels [firstPixel, firstPixel + pixelCount) of x into patches.
 * Each row is one output pixel (b, yR, yC), counted in that order over the whole batch. Each column
 * is one filter element (wR, wC, d1), in the order of the filter's [height, width, inChannels] axes.
 * Taps that fall in the padding are 0.
 */
function im2col(
  x: Float32Array,
  patches: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  firstPixel: number,
  pixelCount: number,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  let patchOffset = 0;

  for (let pixel = firstPixel; pixel < firstPixel + pixelCount; ++pixel) {
    const yC = pixel % outWidth;
    const yR = Math.floor(pixel / outWidth) % outHeight;
    const b = Math.floor(pixel / (outWidth * outHeight));
    const xRowStart = yR * strideHeight - padTop;
    const xColumnStart = yC * strideWidth - padLeft;
    for (let wR = 0; wR < filterHeight; ++wR) {
      const xR = xRowStart + wR;
      const rowInside = xR >= 0 && xR < inHeight;
      for (let wC = 0; wC < filterWidth; ++wC) {
        const xC = xColumnStart + wC;
        if (rowInside && xC >= 0 && xC < inWidth) {
          const xOffset = ((b * inHeight + xR) * inWidth + xC) * inChannels;
          for (let d1 = 0; d1 < inChannels; ++d1) {
            patches[patchOffset + d1] = x[xOffset + d1] as number;
          }
        } else {
          patches.fill(0, patchOffset, patchOffset + inChannels);
        }
        patchOffset += inChannels;
      }
    }
  }
}

/**
 * Adds each row of cols (one per output pixel, laid out as im2col writes it) back onto the input
 * pixels it was read from, for samples [firstSample, firstSample + samples) of dx. Taps in the
 * padding are dropped.
 */
function col2im(
  cols: Float32Array,
  dx: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  firstSample: number,
  samples: number,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  let colOffset = 0;

  for (let b = firstSample; b < firstSample + samples; ++b) {
    for (let yR = 0; yR < outHeight; ++yR) {
      const xRowStart = yR * strideHeight - padTop;
      for (let yC = 0; yC < outWidth; ++yC) {
        const xColumnStart = yC * strideWidth - padLeft;
        for (let wR = 0; wR < filterHeight; ++wR) {
          const xR = xRowStart + wR;
          const rowInside = xR >= 0 && xR < inHeight;
          for (let wC = 0; wC < filterWidth; ++wC) {
            const xC = xColumnStart + wC;
            if (rowInside && xC >= 0 && xC < inWidth) {
              const xOffset = ((b * inHeight + xR) * inWidth + xC) * inChannels;
              for (let d1 = 0; d1 < inChannels; ++d1) {
                (dx[xOffset + d1] as number) += cols[colOffset + d1] as number;
              }
            }
            colOffset += inChannels;
          }
        }
      }
    }
  }
}

/**
 * Pixels per matmul of the filter gradient. XNNPACK sums each block in float32 and the blocks are
 * added in float64, which bounds the rounding error by the block size and not by the number of
 * pixels in the batch. One float32 sum over 39200 pixels (x [2, 140, 140, 64]) was off by 7e-4 on a
 * gradient element of 2.4 against the float64 sums of the cpu backend. Blocks of 64 to 8192 pixels
 * took the same time on the CNN's layers.
 */
const FILTER_GRADIENT_BLOCK_PIXELS = 1024;

/**
 * Copies the output gradient that input pixels [firstPixel, firstPixel + pixelCount) of x receive into
 * rows. Each row is one input pixel (b, xR, xC), counted in that order over the whole batch. Each
 * column is one (wR, wC, d2): dy at the output pixel that reads this input pixel through filter tap
 * (wR, wC), or 0 where no output pixel does.
 */
function unrollOutputGradient(
  dy: Float32Array,
  rows: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  firstPixel: number,
  pixelCount: number,
): void {
  const { inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  if (filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && padTop === 0 && padLeft === 0) {
    // Each input pixel is read by the output pixel at the same place only, so the rows are dy as it is.
    rows.set(dy.subarray(firstPixel * outChannels, (firstPixel + pixelCount) * outChannels));
    return;
  }
  let rowOffset = 0;

  for (let pixel = firstPixel; pixel < firstPixel + pixelCount; ++pixel) {
    const xC = pixel % inWidth;
    const xR = Math.floor(pixel / inWidth) % inHeight;
    const b = Math.floor(pixel / (inWidth * inHeight));
    for (let wR = 0; wR < filterHeight; ++wR) {
      const rowSpan = xR + padTop - wR;
      const yR = rowSpan / strideHeight;
      const rowRead = rowSpan >= 0 && rowSpan % strideHeight === 0 && yR < outHeight;
      for (let wC = 0; wC < filterWidth; ++wC) {
        const columnSpan = xC + padLeft - wC;
        const yC = columnSpan / strideWidth;
        if (rowRead && columnSpan >= 0 && columnSpan % strideWidth === 0 && yC < outWidth) {
          const dyOffset = ((b * outHeight + yR) * outWidth + yC) * outChannels;
          for (let d2 = 0; d2 < outChannels; ++d2) {
            rows[rowOffset + d2] = dy[dyOffset + d2] as number;
          }
        } else {
          rows.fill(0, rowOffset, rowOffset + outChannels);
        }
        rowOffset += outChannels;
      }
    }
  }
}

/** A split of the filter gradient into blocks of one matmul each: the operand shapes and how to fill them. */
interface FilterGradientPlan {
  /** Pixels the blocks run over: output pixels for im2col, input pixels for the unrolled dy. */
  readonly totalPixels: number;
  /** Rows of the product: the left operand is [blockPixels, leftRows] and enters the matmul transposed. */
  readonly leftRows: number;
  /** Columns of the right operand, which is [blockPixels, rightColumns]. */
  readonly rightColumns: number;
  /**
   * Writes both operands of the block [firstPixel, firstPixel + pixels); rows past `pixels` stay as they
   * are. It reads x and dy through new heap views, because makeOutput may grow the heap and detach older views.
   */
  fill(left: Float32Array, right: Float32Array, firstPixel: number, pixels: number): void;
  /** Index in the [height, width, inChannels, outChannels] filter of the product's element (row, column). */
  filterIndex(row: number, column: number): number;
}

/**
 * Plans dW^T = dy^T * patches over output pixels, where im2col unrolls x into patches
 * [pixels, filterHeight * filterWidth * inChannels]. It copies fewer values than the unrolled dy when
 * inChannels is below outChannels, as in a first layer on one image channel.
 */
function im2colPlan(wasm: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): FilterGradientPlan {
  const { outChannels } = info;
  const patchSize = info.filterHeight * info.filterWidth * info.inChannels;
  return {
    totalPixels: info.batchSize * info.outHeight * info.outWidth,
    leftRows: outChannels,
    rightColumns: patchSize,
    fill: (left, right, firstPixel, pixels) => {
      const dyValues = wasm.typedArrayFromHeap(dy) as Float32Array;
      im2col(wasm.typedArrayFromHeap(x) as Float32Array, right, info, firstPixel, pixels);
      left.set(dyValues.subarray(firstPixel * outChannels, (firstPixel + pixels) * outChannels));
    },
    filterIndex: (d2, tap) => tap * outChannels + d2,
  };
}

/**
 * Plans dW' = x^T * rows over input pixels, where unrollOutputGradient gives each input pixel the dy
 * of every output pixel that reads it: rows [pixels, filterHeight * filterWidth * outChannels]. For a
 * [3, 3, 32, 4] filter it copies 68 values per pixel against 292 for im2col.
 */
function unrolledDyPlan(wasm: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): FilterGradientPlan {
  const { inChannels, outChannels } = info;
  return {
    totalPixels: info.batchSize * info.inHeight * info.inWidth,
    leftRows: inChannels,
    rightColumns: info.filterHeight * info.filterWidth * outChannels,
    fill: (left, right, firstPixel, pixels) => {
      const xValues = wasm.typedArrayFromHeap(x) as Float32Array;
      unrollOutputGradient(wasm.typedArrayFromHeap(dy) as Float32Array, right, info, firstPixel, pixels);
      left.set(xValues.subarray(firstPixel * inChannels, (firstPixel + pixels) * inChannels));
    },
    filterIndex: (d1, column) => {
      const tap = Math.floor(column / outChannels);
      return (tap * inChannels + d1) * outChannels + (column % outChannels);
    },
  };
}

/**
 * Computes the conv2d filter gradient dW[wR, wC, d1, d2] = sum over b, yR, yC of
 * x[b, yR * strideHeight + wR - padTop, yC * strideWidth + wC - padLeft, d1] * dy[b, yR, yC, d2],
 * skipping taps that fall in the padding. Both inputs are NHWC with dilation 1. The sum runs in blocks
 * of pixels, each a matmul on the wasm backend of two operands unrolled in JS: im2col over the output
 * pixels, or the unrolled dy over the input pixels, whichever copies fewer values. The blocks are
 * summed in float64, as the cpu backend sums.
 */
function conv2dFilterGradient(
  wasm: BackendWasm,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { outHeight, outWidth, inHeight, inWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const taps = filterHeight * filterWidth;
  const im2colCopies = outHeight * outWidth * (taps * inChannels + outChannels);
  const unrolledDyCopies = inHeight * inWidth * (taps * outChannels + inChannels);
  // On a tie (a 1x1 filter with stride 1) the unrolled dy wins, because its rows are then a plain copy of dy.
  const plan = unrolledDyCopies <= im2colCopies ? unrolledDyPlan(wasm, x, dy, info) : im2colPlan(wasm, x, dy, info);
  const blockPixels = Math.min(FILTER_GRADIENT_BLOCK_PIXELS, plan.totalPixels);
  // Sums of the product [leftRows, rightColumns] over the blocks.
  const sums = new Float64Array(plan.leftRows * plan.rightColumns);

  for (let firstPixel = 0; firstPixel < plan.totalPixels; firstPixel += blockPixels) {
    const pixels = Math.min(blockPixels, plan.totalPixels - firstPixel);
    // Each block gets new buffers, because the wasm BatchMatMul caches its XNNPACK operator, with the
    // packed second operand, under that operand's data id and would reuse stale values.
    const left = wasm.makeOutput([blockPixels, plan.leftRows], 'float32');
    const right = wasm.makeOutput([blockPixels, plan.rightColumns], 'float32');
    let transposed: tf.TensorInfo | undefined;
    let product: tf.TensorInfo | undefined;
    try {
      // The last block may be short, so its operands are the leading pixels of the buffers with the
      // rest zeroed, which adds nothing to the sums.
      const leftValues = wasm.typedArrayFromHeap(left) as Float32Array;
      const rightValues = wasm.typedArrayFromHeap(right) as Float32Array;
      if (pixels < blockPixels) {
        leftValues.fill(0);
        rightValues.fill(0);
      }
      plan.fill(leftValues, rightValues, firstPixel, pixels);

      // The packaged Transpose kernel (C++) transposes the left operand faster than a JS loop.
      transposed = swapLastAxes(wasm, left);
      product = matMulOnWasm(wasm, transposed, right);
      // The view is taken after the matmul, because its allocation may grow the heap and detach older views.
      const productValues = wasm.typedArrayFromHeap(product) as Float32Array;
      for (let i = 0; i < sums.length; ++i) {
        (sums[i] as number) += productValues[i] as number;
      }
    } finally {
      wasm.disposeData(left.dataId);
      wasm.disposeData(right.dataId);
      if (transposed !== undefined) {
        wasm.disposeData(transposed.dataId);
      }
      if (product !== undefined) {
        wasm.disposeData(product.dataId);
      }
    }
  }

  const output = wasm.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  const outputValues = wasm.typedArrayFromHeap(output) as Float32Array;
  for (let row = 0; row < plan.leftRows; ++row) {
    for (let column = 0; column < plan.rightColumns; ++column) {
      outputValues[plan.filterIndex(row, column)] = sums[row * plan.rightColumns + column] as number;
    }
  }
  return output;
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

  const info = checkedConv2DInfo(kernelName, { name: 'x', shape: xShape }, filterShape, strides, pad, dimRoundingMode, dy);
  return conv2dFilterGradient(backend as BackendWasm, x, dy, info);
}

/** Computes the convolution geometry of a gradient kernel and checks that dy has the output shape it implies. */
function checkedConv2DInfo(
  kernelName: string,
  input: { readonly name: string; readonly shape: Shape4D },
  filterShape: Shape4D,
  strides: Parameters<typeof tf.backend_util.computeConv2DInfo>[2],
  pad: Parameters<typeof tf.backend_util.computeConv2DInfo>[4],
  dimRoundingMode: Parameters<typeof tf.backend_util.computeConv2DInfo>[5],
  dy: tf.TensorInfo,
): tf.backend_util.Conv2DInfo {
  const info = tf.backend_util.computeConv2DInfo(input.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const expectedDyShape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (!sameShape(dy.shape, expectedDyShape)) {
    throw new InputError(
      `${kernelName} on the wasm backend expected dy of shape [${expectedDyShape.join(', ')}] for ${input.name} [${input.shape.join(', ')}] and filter [${filterShape.join(', ')}], but got [${dy.shape.join(', ')}].`,
    );
  }
  return info;
}

/**
 * Returns the explicit NHWC padding under which a stride-1 convolution of dy with the flipped filter
 * gives dx, or undefined when the strides are not 1 or a side would need negative padding.
 */
function transposedConvolutionPadding(info: tf.backend_util.Conv2DInfo): tf.backend_util.ExplicitPadding | undefined {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) {
    return undefined;
  }
  const { top, bottom, left, right } = info.padInfo;
  const sides = [info.filterHeight - 1 - top, info.filterHeight - 1 - bottom, info.filterWidth - 1 - left, info.filterWidth - 1 - right];
  if (sides.some((side) => side < 0)) {
    return undefined;
  }
  const [flippedTop, flippedBottom, flippedLeft, flippedRight] = sides as [number, number, number, number];
  return [
    [0, 0],
    [flippedTop, flippedBottom],
    [flippedLeft, flippedRight],
    [0, 0],
  ];
}

/**
 * Computes the conv2d input gradient of a stride-1 convolution as a convolution on the wasm backend's
 * own Conv2D kernel (XNNPACK): dx = conv2d(dy, F) with F[i, j, d2, d1] = W[filterHeight - 1 - i,
 * filterWidth - 1 - j, d1, d2] and the padding from transposedConvolutionPadding.
 */
function convolveOutputGradient(
  wasm: BackendWasm,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  padding: tf.backend_util.ExplicitPadding,
): tf.TensorInfo {
  const { filterHeight, filterWidth, inChannels, outChannels } = info;
  // The flipped filter is a new tensor on every call, so the cached XNNPACK operator of an older one is never reused.
  const flipped = wasm.makeOutput([filterHeight, filterWidth, outChannels, inChannels], 'float32');
  try {
    const source = wasm.typedArrayFromHeap(filter) as Float32Array;
    const target = wasm.typedArrayFromHeap(flipped) as Float32Array;
    for (let i = 0; i < filterHeight; ++i) {
      for (let j = 0; j < filterWidth; ++j) {
        const sourceTap = ((filterHeight - 1 - i) * filterWidth + (filterWidth - 1 - j)) * inChannels * outChannels;
        const targetTap = (i * filterWidth + j) * outChannels * inChannels;
        for (let d1 = 0; d1 < inChannels; ++d1) {
          for (let d2 = 0; d2 < outChannels; ++d2) {
            target[targetTap + d2 * inChannels + d1] = source[sourceTap + d1 * outChannels + d2] as number;
          }
        }
      }
    }
    const attrs = { strides: 1, pad: padding, dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
    return packagedKernel(tf.Conv2D).kernelFunc({ inputs: { x: dy, filter: flipped }, backend: wasm, attrs: attrs as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
  } finally {
    wasm.disposeData(flipped.dataId);
  }
}

/**
 * Computes the conv2d input gradient dx[b, xR, xC, d1] = sum over the output pixels (yR, yC) that
 * read x[b, xR, xC] through filter tap (wR, wC) of sum over d2 of dy[b, yR, yC, d2] * W[wR, wC, d1, d2].
 * Both tensors are NHWC with dilation 1. A stride-1 convolution goes to convolveOutputGradient. For
 * other strides, for each chunk of the batch the wasm backend's matmul computes
 * cols = dy * W^T [pixels, filterHeight * filterWidth * inChannels], and col2im adds each row of cols
 * back onto the input pixels it belongs to.
 */
function conv2dInputGradient(
  wasm: BackendWasm,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const padding = transposedConvolutionPadding(info);
  if (padding !== undefined) {
    return convolveOutputGradient(wasm, dy, filter, info, padding);
  }
  const { batchSize, outHeight, outWidth, outChannels, filterHeight, filterWidth, inChannels } = info;
  const patchSize = filterHeight * filterWidth * inChannels;
  const pixelsPerSample = outHeight * outWidth;
  const chunkSamples = samplesPerChunk(info);

  const output = wasm.makeOutput([...info.inShape], 'float32');
  // The wasm heap is not zeroed when memory is allocated.
  (wasm.typedArrayFromHeap(output) as Float32Array).fill(0);
  const filterTransposed = wasm.makeOutput([outChannels, patchSize], 'float32');
  try {
    transposeInto(
      wasm.typedArrayFromHeap(filter) as Float32Array,
      wasm.typedArrayFromHeap(filterTransposed) as Float32Array,
      patchSize,
      outChannels,
    );

    for (let firstSample = 0; firstSample < batchSize; firstSample += chunkSamples) {
      const samples = Math.min(chunkSamples, batchSize - firstSample);
      const pixels = samples * pixelsPerSample;
      const dyChunk = wasm.makeOutput([pixels, outChannels], 'float32');
      let cols: tf.TensorInfo | undefined;
      try {
        const dyValues = wasm.typedArrayFromHeap(dy) as Float32Array;
        (wasm.typedArrayFromHeap(dyChunk) as Float32Array).set(
          dyValues.subarray(firstSample * pixelsPerSample * outChannels, (firstSample + samples) * pixelsPerSample * outChannels),
        );
        cols = matMulOnWasm(wasm, dyChunk, filterTransposed);
        // Views are taken after the matmul, because its allocation may grow the heap and detach older views.
        col2im(wasm.typedArrayFromHeap(cols) as Float32Array, wasm.typedArrayFromHeap(output) as Float32Array, info, firstSample, samples);
      } finally {
        wasm.disposeData(dyChunk.dataId);
        if (cols !== undefined) {
          wasm.disposeData(cols.dataId);
        }
      }
    }
  } catch (error) {
    wasm.disposeData(output.dataId);
    throw error;
  } finally {
    wasm.disposeData(filterTransposed.dataId);
  }
  return output;
}

function conv2DBackpropInput(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] {
  const kernelName = tf.Conv2DBackpropInput;
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as tf.Conv2DBackpropInputInputs;
  if (dy === undefined || filter === undefined) {
    throw new InputError(`${kernelName} on the wasm backend requires inputs 'dy' and 'filter'. Pass both to the kernel.`);
  }
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const dilations = (attrs as { dilations?: number | [number, number] } | undefined)?.dilations ?? 1;

  if (dataFormat !== 'NHWC' && packagedKernels.has(kernelName)) {
    return packagedKernel(kernelName).kernelFunc(args);
  }
  if (dataFormat !== 'NHWC') {
    throw new InputError(
      `${kernelName} on the wasm backend supports only dataFormat 'NHWC', but got '${String(dataFormat)}'. Transpose dy to NHWC or use the cpu backend.`,
    );
  }
  if (!tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new InputError(
      `${kernelName} on the wasm backend supports only dilations 1, but got ${JSON.stringify(dilations)}. Use dilations 1 or the cpu backend.`,
    );
  }
  requireFloat32(kernelName, 'dy', dy);
  requireFloat32(kernelName, 'filter', filter);
  requireRank4(kernelName, 'dy', dy);
  const filterShape = requireRank4(kernelName, 'filter', filter);
  if (inputShape.length !== 4 || inputShape[3] !== filterShape[2]) {
    throw new InputError(
      `${kernelName} on the wasm backend requires inputShape [batch, height, width, ${filterShape[2]}] to match the ${filterShape[2]} in-channels of the filter, but got [${inputShape.join(', ')}].`,
    );
  }

  const info = checkedConv2DInfo(kernelName, { name: 'input', shape: inputShape as Shape4D }, filterShape, strides, pad, dimRoundingMode, dy);
  return conv2dInputGradient(backend as BackendWasm, dy, filter, info);
}

/**
 * scatterMaxPoolGradient for windows that tile the input without overlap or padding, as a 2x2 pool
 * with stride 2 does: the same result, with each window searched channel by channel and no state arrays.
 */
function scatterTiledMaxPoolGradient(x: Float32Array, dy: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const rowStep = inWidth * inChannels;
  const twoByTwo = strideHeight === 2 && strideWidth === 2;
  let dyOffset = 0;

  for (let b = 0; b < batchSize; ++b) {
    for (let yR = 0; yR < outHeight; ++yR) {
      for (let yC = 0; yC < outWidth; ++yC) {
        const windowOffset = ((b * inHeight + yR * strideHeight) * inWidth + yC * strideWidth) * inChannels;
        if (twoByTwo) {
          // The common 2x2 window, unrolled: the four taps in row-major order, the first maximum winning.
          for (let d = 0; d < inChannels; ++d) {
            const topLeft = windowOffset + d;
            const topRight = topLeft + inChannels;
            const bottomLeft = topLeft + rowStep;
            const bottomRight = bottomLeft + inChannels;
            let maxValue = x[topLeft] as number;
            let maxIndex = maxValue > Number.NEGATIVE_INFINITY ? topLeft : -1;
            const topRightValue = x[topRight] as number;
            if (topRightValue > maxValue || (maxIndex < 0 && topRightValue > Number.NEGATIVE_INFINITY)) {
              maxValue = topRightValue;
              maxIndex = topRight;
            }
            const bottomLeftValue = x[bottomLeft] as number;
            if (bottomLeftValue > maxValue || (maxIndex < 0 && bottomLeftValue > Number.NEGATIVE_INFINITY)) {
              maxValue = bottomLeftValue;
              maxIndex = bottomLeft;
            }
            const bottomRightValue = x[bottomRight] as number;
            if (bottomRightValue > maxValue || (maxIndex < 0 && bottomRightValue > Number.NEGATIVE_INFINITY)) {
              maxIndex = bottomRight;
            }
            if (maxIndex >= 0) {
              (dx[maxIndex] as number) += dy[dyOffset + d] as number;
            }
          }
          dyOffset += inChannels;
          continue;
        }
        for (let d = 0; d < inChannels; ++d) {
          let maxValue = Number.NEGATIVE_INFINITY;
          let maxIndex = -1;
          for (let wR = 0; wR < strideHeight; ++wR) {
            const rowOffset = windowOffset + wR * rowStep + d;
            for (let wC = 0; wC < strideWidth; ++wC) {
              const index = rowOffset + wC * inChannels;
              const value = x[index] as number;
              if (value > maxValue) {
                maxValue = value;
                maxIndex = index;
              }
            }
          }
          if (maxIndex >= 0) {
            (dx[maxIndex] as number) += dy[dyOffset + d] as number;
          }
        }
        dyOffset += inChannels;
      }
    }
  }
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
  const tiled = strideHeight === effectiveFilterHeight && strideWidth === effectiveFilterWidth && padTop === 0 && padLeft === 0;
  if (tiled && outHeight * strideHeight <= inHeight && outWidth * strideWidth <= inWidth) {
    scatterTiledMaxPoolGradient(x, dy, dx, info);
    return;
  }
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
  { kernelName: tf.BatchMatMul, backendName: WASM, kernelFunc: batchMatMul },
  { kernelName: tf.Conv2DBackpropFilter, backendName: WASM, kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.Conv2DBackpropInput, backendName: WASM, kernelFunc: conv2DBackpropInput },
  { kernelName: tf.MaxPoolGrad, backendName: WASM, kernelFunc: maxPoolGrad },
];

/**
 * Registers the kernels that the wasm backend of @tensorflow/tfjs-backend-wasm 4.22.0 lacks, gets
 * wrong or runs slowly. BatchMatMul with a transposed operand is a scalar C++ loop, so the
 * replacement transposes the operand first and runs the XNNPACK case. Conv2DBackpropFilter is
 * missing. Conv2DBackpropInput is a scalar C++ loop, which the replacement outruns by running the
 * matmul through XNNPACK; it still hands NCHW inputs to the packaged kernel. MaxPoolGrad starts each
 * window's maximum at FLT_MIN (tfjs-backend-wasm/src/cc/kernels/MaxPoolGrad.cc), so a window whose
 * values are all at most 0 drops its gradient or sends it to element 0 of the tensor. It also gives
 * ties to the last maximum, where the cpu backend gives them to the first.
 *
 * Call it after importing '@tensorflow/tfjs-backend-wasm', because that import registers the
 * package's own kernels and would replace these. Calling it again is a no-op.
 *
 * @throws Error when '@tensorflow/tfjs-backend-wasm' has not been imported yet.
 */
export function registerWasmKernels(): void {
  if (tf.findBackendFactory(WASM) == null) {
    throw new Error(
      "The wasm backend is not registered, so its kernels cannot be replaced. Import '@tensorflow/tfjs-backend-wasm' before calling registerWasmKernels().",
    );
  }

  // Kernels the replacements call and leave in place.
  for (const kernelName of [tf.Transpose, tf.Conv2D]) {
    const kernel = tf.getKernel(kernelName, WASM) as tf.KernelConfig | undefined;
    if (kernel !== undefined) {
      packagedKernels.set(kernelName, kernel);
    }
  }
  for (const config of REPLACEMENT_KERNELS) {
    const registered = tf.getKernel(config.kernelName, WASM) as tf.KernelConfig | undefined;
    if (registered?.kernelFunc === config.kernelFunc) {
      continue;
    }
    let replacement = config;
    if (registered !== undefined) {
      packagedKernels.set(config.kernelName, registered);
      // The packaged kernel's setupFunc binds its C++ function when the backend initialises, and the
      // replacement calls that kernel for some inputs.
      if (registered.setupFunc !== undefined) {
        replacement = { ...config, setupFunc: registered.setupFunc };
      }
      // Unregistering first avoids the warning that registerKernel prints when it overwrites a kernel.
      tf.unregisterKernel(config.kernelName, WASM);
    }
    tf.registerKernel(replacement);
  }
}
