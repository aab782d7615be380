import * as tf from '@tensorflow/tfjs';

import { adaptersModule } from '@safe-metanet/adapters';
import { createBackbone } from '@safe-metanet/backbones';
import { buildSafeMetaNet, PROTOTYPE_SETTINGS, resolveConfig, type Backbone, type Logger, type SafeMetaNet } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

/** A runner and its backbone, built from snake_case settings with the standard plugins. */
export interface Harness {
  readonly runner: SafeMetaNet;
  readonly backbone: Backbone;
  dispose(): void;
}

/** Small models so that the tests run in seconds: an MLP on 12 features, a CNN on 8x8 images. */
export const SMALL_MODELS: Readonly<Record<'mlp' | 'cnn', Record<string, unknown>>> = {
  mlp: { backbone: 'mlp', input_dim: 12, hidden_dim: 16, output_dim: 5 },
  cnn: { backbone: 'cnn', image_size: 8, image_channels: 1, hidden_dim: 4, output_dim: 5 },
};

/** Builds a runner with the standard plugins and, unless `settings` override them, the prototype's step settings. */
export function buildHarness(settings: Record<string, unknown>, logger?: Logger): Harness {
  const config = resolveConfig({ ...PROTOTYPE_SETTINGS, ...settings });
  const backbone = createBackbone(config);
  const modules = [adaptersModule, proxiesModule, policiesModule];
  const runner = buildSafeMetaNet(logger === undefined ? { config, modules, backbone } : { config, modules, backbone, logger });
  return {
    runner,
    backbone,
    dispose: () => {
      runner.dispose();
      backbone.dispose();
    },
  };
}

/** Returns a seeded random batch for a backbone. */
export function randomBatch(backbone: Backbone, size: number, seed: number): tf.Tensor {
  return tf.randomNormal([size, ...backbone.inputShape], 0, 1, 'float32', seed);
}

/** Copies the raw bytes of tensors, for bitwise comparison. */
export function bytesOf(tensors: readonly tf.Tensor[]): Uint8Array[] {
  return tensors.map((tensor) => new Uint8Array((tensor.dataSync() as Float32Array).slice().buffer));
}

/** Copies the bytes of every adapter variable of a runner, by layer and variable order. */
export function adapterBytes(runner: SafeMetaNet): Uint8Array[] {
  return bytesOf([...runner.adapters.values()].flatMap((adapter) => adapter.variables));
}
