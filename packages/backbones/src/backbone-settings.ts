import type { ServiceIdentifier } from 'inversify';

import { ConfigError, type SafeMetaNetConfig } from '@safe-metanet/core';

/** Config values an MLP backbone is built from. A full SafeMetaNetConfig fits. */
export type MlpSettings = Pick<SafeMetaNetConfig, 'hiddenDim' | 'numLayers' | 'inputDim' | 'outputDim' | 'seed'>;

/** Config values a CNN backbone is built from. A full SafeMetaNetConfig fits. */
export type CnnSettings = Pick<
  SafeMetaNetConfig,
  'hiddenDim' | 'numLayers' | 'imageSize' | 'imageChannels' | 'outputDim' | 'seed'
>;

/** Config values createBackbone reads. A full SafeMetaNetConfig fits. */
export type BackboneSettings = MlpSettings & CnnSettings & Pick<SafeMetaNetConfig, 'backbone'>;

/** Build options that are not config keys. */
export interface BackboneOptions {
  /**
   * Adds a decoder head that reconstructs the input from the features entering the last layer,
   * for the reconstruction proxy. Default false.
   */
  readonly decoder?: boolean;
}

/**
 * Build options for backbones resolved from the container, such as
 * `bind(BackboneOptionsId).toConstantValue({ decoder: true })`. Without a binding there is no decoder.
 */
export const BackboneOptionsId: ServiceIdentifier<BackboneOptions> = Symbol.for('@safe-metanet/backbones/BackboneOptions');

/** Throws a ConfigError unless `value` is an integer of at least `min`. `key` is the snake_case config key. */
export function checkInteger(key: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(key, `Invalid value for '${key}': ${String(value)}; it must be an integer of at least ${min}.`);
  }
}

/** Throws a ConfigError unless `seed` is a non-negative integer. */
export function checkSeed(seed: number): void {
  checkInteger('seed', seed, 0);
}
