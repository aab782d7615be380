import type * as tf from '@tensorflow/tfjs';

import { ConfigError, InputError, type LayerSpec } from '@safe-metanet/core';

/**
 * Checks that `layer` is a dense or conv2d layer with positive integer sizes.
 * An unsupported kind is a ConfigError on `adapter_type`, and a malformed size is an InputError.
 */
export function checkLayerSpec(layer: LayerSpec, adapterType: string): void {
  if (layer.kind !== 'dense' && layer.kind !== 'conv2d') {
    throw new ConfigError(
      'adapter_type',
      `Invalid value for 'adapter_type': '${adapterType}' adapters wrap dense and conv2d layers, and layer ` +
        `'${layer.name}' is of kind '${String(layer.kind)}'. Remove the layer from expansion_schedule.`,
    );
  }

  const sizes: [string, number][] = [
    ['inputSize', layer.inputSize],
    ['outputSize', layer.outputSize],
  ];
  if (layer.kind === 'conv2d') {
    sizes.push(['kernelSize', layer.kernelSize], ['strides', layer.strides]);
  }
  for (const [field, value] of sizes) {
    if (!Number.isInteger(value) || value < 1) {
      throw new InputError(
        `Invalid layer spec for layer '${layer.name}': ${field} is ${value}; expected a positive integer. ` +
          'The backbone must describe the real shape of the layer.',
      );
    }
  }

  if (layer.kind === 'conv2d' && layer.padding !== 'same' && layer.padding !== 'valid') {
    throw new InputError(
      `Invalid layer spec for layer '${layer.name}': padding is ${JSON.stringify(layer.padding)}; ` +
        "expected 'same' or 'valid'.",
    );
  }
}

/** Describes the layer's dimensions for error messages, such as `dense, 16 inputs, 10 outputs`. */
export function describeLayer(layer: LayerSpec): string {
  if (layer.kind === 'dense') {
    return `dense, ${layer.inputSize} inputs, ${layer.outputSize} outputs`;
  }
  return (
    `conv2d, ${layer.kernelSize}x${layer.kernelSize} kernel, ${layer.inputSize} input channels, ` +
    `${layer.outputSize} filters`
  );
}

/** Returns the output length of a convolution along one spatial axis, as tf.conv2d computes it. */
export function convOutputLength(length: number, kernelSize: number, strides: number, padding: 'same' | 'valid'): number {
  if (padding === 'same') {
    return Math.ceil(length / strides);
  }
  return Math.ceil((length - kernelSize + 1) / strides);
}

/** Checks that `input` has the layer's input shape: `[batch, inputSize]` or NHWC `[batch, height, width, inputSize]`. */
export function checkLayerInput(layer: LayerSpec, adapterType: string, input: tf.Tensor): void {
  const expected = layer.kind === 'dense' ? `[batch, ${layer.inputSize}]` : `[batch, height, width, ${layer.inputSize}]`;
  const rank = layer.kind === 'dense' ? 2 : 4;
  if (input.rank !== rank || input.shape[rank - 1] !== layer.inputSize) {
    throw new InputError(
      `Invalid input for the ${adapterType} adapter of layer '${layer.name}': expected shape ${expected}, ` +
        `got ${formatShape(input.shape)}. Pass the input of the frozen layer.`,
    );
  }
}

/**
 * Returns the frozen output shape the layer produces for `input`; throws an InputError when a
 * conv2d input is smaller than the kernel under 'valid' padding.
 */
export function layerOutputShape(layer: LayerSpec, adapterType: string, input: tf.Tensor): number[] {
  const batch = input.shape[0] ?? 0;
  if (layer.kind === 'dense') {
    return [batch, layer.outputSize];
  }

  const height = convOutputLength(input.shape[1] ?? 0, layer.kernelSize, layer.strides, layer.padding);
  const width = convOutputLength(input.shape[2] ?? 0, layer.kernelSize, layer.strides, layer.padding);
  if (height < 1 || width < 1) {
    throw new InputError(
      `Invalid input for the ${adapterType} adapter of layer '${layer.name}': ${formatShape(input.shape)} is ` +
        `smaller than the ${layer.kernelSize}x${layer.kernelSize} kernel under 'valid' padding. Pass a larger image.`,
    );
  }
  return [batch, height, width, layer.outputSize];
}

/**
 * Checks the frozen output's shape: exactly `expected` when given, else the layer's rank with
 * `outputSize` on the last axis.
 */
export function checkFrozenOutput(
  layer: LayerSpec,
  adapterType: string,
  frozenOutput: tf.Tensor,
  expected?: readonly number[],
): void {
  const rank = layer.kind === 'dense' ? 2 : 4;
  let matches = frozenOutput.rank === rank && frozenOutput.shape[rank - 1] === layer.outputSize;
  let wanted = layer.kind === 'dense' ? `[batch, ${layer.outputSize}]` : `[batch, height, width, ${layer.outputSize}]`;
  if (expected !== undefined) {
    matches = sameShape(frozenOutput.shape, expected);
    wanted = formatShape(expected);
  }

  if (!matches) {
    throw new InputError(
      `Invalid frozen output for the ${adapterType} adapter of layer '${layer.name}': expected shape ${wanted}, ` +
        `got ${formatShape(frozenOutput.shape)}. Pass the frozen layer's pre-activation output for the same input.`,
    );
  }
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((size, index) => size === right[index]);
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
