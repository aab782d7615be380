/**
 * Per-image pixel operations behind the corruptions. Each reads one image in HWC order from
 * `source` and writes the result to `target`, an array of the same length. The results are not
 * clamped here, because the caller clamps them to [0, 1].
 */

/** Size of one image. */
export interface ImageGeometry {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/**
 * Samples channel `channel` at the real position (x, y) with bilinear interpolation. Positions
 * outside the image read `fill` when it is a number, or the nearest edge pixel when it is
 * `'edge'`.
 */
export function sampleBilinear(
  source: Float32Array,
  geometry: ImageGeometry,
  x: number,
  y: number,
  channel: number,
  fill: number | 'edge',
): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;

  const top = (1 - fx) * readPixel(source, geometry, x0, y0, channel, fill) + fx * readPixel(source, geometry, x0 + 1, y0, channel, fill);
  const bottom = (1 - fx) * readPixel(source, geometry, x0, y0 + 1, channel, fill) + fx * readPixel(source, geometry, x0 + 1, y0 + 1, channel, fill);
  return (1 - fy) * top + fy * bottom;
}

function readPixel(
  source: Float32Array,
  geometry: ImageGeometry,
  x: number,
  y: number,
  channel: number,
  fill: number | 'edge',
): number {
  const { height, width, channels } = geometry;
  let column = x;
  let row = y;

  if (column < 0 || column >= width || row < 0 || row >= height) {
    if (fill !== 'edge') {
      return fill;
    }
    column = Math.min(Math.max(column, 0), width - 1);
    row = Math.min(Math.max(row, 0), height - 1);
  }
  return source[(row * width + column) * channels + channel] as number;
}

/**
 * Warps an image by a linear map about the image centre, followed by a shift of (shiftX, shiftY)
 * pixels. `inverse` is the inverse `[a b; c d]` of the linear map, because output pixel p reads
 * the input at `inverse (p − centre − shift) + centre`. Pixels from outside the image are black
 * (0), the background of the digit and clothing data sets.
 */
export function warpAffine(
  source: Float32Array,
  target: Float32Array,
  geometry: ImageGeometry,
  inverse: readonly [number, number, number, number],
  shiftX: number,
  shiftY: number,
): void {
  const { height, width, channels } = geometry;
  const [a, b, c, d] = inverse;
  const centreX = (width - 1) / 2;
  const centreY = (height - 1) / 2;

  for (let y = 0; y < height; y++) {
    const dy = y - centreY - shiftY;
    for (let x = 0; x < width; x++) {
      const dx = x - centreX - shiftX;
      const sourceX = a * dx + b * dy + centreX;
      const sourceY = c * dx + d * dy + centreY;
      for (let channel = 0; channel < channels; channel++) {
        target[(y * width + x) * channels + channel] = sampleBilinear(source, geometry, sourceX, sourceY, channel, 0);
      }
    }
  }
}

/** Returns normalised Gaussian weights for offsets −radius … radius, radius = ceil(3σ). */
export function gaussianKernel(sigma: number): Float64Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let offset = -radius; offset <= radius; offset++) {
    const weight = Math.exp(-(offset * offset) / (2 * sigma * sigma));
    kernel[offset + radius] = weight;
    sum += weight;
  }
  return kernel.map((weight) => weight / sum);
}

/**
 * Convolves with a separable kernel (rows, then columns), repeating edge pixels past the
 * border. `scratch` receives the intermediate image and has the image's length.
 */
export function convolveSeparable(
  source: Float32Array,
  target: Float32Array,
  scratch: Float32Array,
  geometry: ImageGeometry,
  kernel: Float64Array,
): void {
  const { height, width, channels } = geometry;
  const radius = (kernel.length - 1) / 2;

  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let channel = 0; channel < channels; channel++) {
        let sum = 0;
        for (let k = -radius; k <= radius; k++) {
          const column = Math.min(Math.max(x + k, 0), width - 1);
          sum += (kernel[k + radius] as number) * (source[(y * width + column) * channels + channel] as number);
        }
        scratch[(y * width + x) * channels + channel] = sum;
      }
    }
  }

  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let channel = 0; channel < channels; channel++) {
        let sum = 0;
        for (let k = -radius; k <= radius; k++) {
          const row = Math.min(Math.max(y + k, 0), height - 1);
          sum += (kernel[k + radius] as number) * (scratch[(row * width + x) * channels + channel] as number);
        }
        target[(y * width + x) * channels + channel] = sum;
      }
    }
  }
}

/**
 * Averages `taps` bilinear samples spaced one pixel apart on a line through each pixel at
 * `angle` radians, centred on the pixel, repeating edge pixels past the border.
 */
export function motionBlur(
  source: Float32Array,
  target: Float32Array,
  geometry: ImageGeometry,
  taps: number,
  angle: number,
): void {
  const { height, width, channels } = geometry;
  const stepX = Math.cos(angle);
  const stepY = Math.sin(angle);
  const firstOffset = -(taps - 1) / 2;

  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let channel = 0; channel < channels; channel++) {
        let sum = 0;
        for (let tap = 0; tap < taps; tap++) {
          const offset = firstOffset + tap;
          sum += sampleBilinear(source, geometry, x + offset * stepX, y + offset * stepY, channel, 'edge');
        }
        target[(y * width + x) * channels + channel] = sum / taps;
      }
    }
  }
}

/**
 * Replaces each `block` × `block` tile, counted from the top-left corner, by its mean per
 * channel. Tiles cut by the right or bottom border average the pixels they contain.
 */
export function pixelate(source: Float32Array, target: Float32Array, geometry: ImageGeometry, block: number): void {
  const { height, width, channels } = geometry;

  for (let top = 0; top < height; top += block) {
    const bottom = Math.min(top + block, height);
    for (let left = 0; left < width; left += block) {
      const right = Math.min(left + block, width);
      const area = (bottom - top) * (right - left);
      for (let channel = 0; channel < channels; channel++) {
        let sum = 0;
        for (let y = top; y < bottom; y++) {
          for (let x = left; x < right; x++) {
            sum += source[(y * width + x) * channels + channel] as number;
          }
        }
        const mean = sum / area;
        for (let y = top; y < bottom; y++) {
          for (let x = left; x < right; x++) {
            target[(y * width + x) * channels + channel] = mean;
          }
        }
      }
    }
  }
}

/**
 * Samples a Poisson variable: Knuth's multiplication method below a mean of 30, and above it
 * the normal approximation `round(mean + sqrt(mean) z)`, whose error is small at that mean.
 */
export function samplePoisson(mean: number, uniform: () => number, normal: () => number): number {
  if (mean <= 0) {
    return 0;
  }
  if (mean >= 30) {
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal()));
  }

  const limit = Math.exp(-mean);
  let product = uniform();
  let count = 0;
  while (product > limit) {
    product *= uniform();
    count++;
  }
  return count;
}
