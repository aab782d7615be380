// Run: pnpm --filter @safe-metanet/example-cnn-conv-adapters start
// Adapts a small CNN with a rollback threshold that rejects its first updates, so that both conv layers
// join the scope. Then prints the trainable parameters of each scoped layer's LoRA adapter and how far training moved it.
import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';

import { adaptersModule, LoraAdapter } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { formatSummary, streamSyntheticBatches, trainSyntheticSource } from '@safe-metanet/cli';
import { buildSafeMetaNet, resolveConfig, selectBackend, StreamLogger, type LayerSpec } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

// 12x12 images and 8 channels keep the source training to a few seconds. The CNN has two 3x3 conv
// layers (layer_0, layer_1) and the dense logits layer (layer_2). On this stream (seed 0), a threshold
// of 0.001 nats rejects the first batch's update at layer_2 and at layer_1, so the scope grows to all three.
const config = resolveConfig({ backbone: 'cnn', image_size: 12, hidden_dim: 8, rollback_threshold: 0.001 });
const logger = new StreamLogger(config.logLevel);
await selectBackend(config.backend, logger);

// trainSyntheticSource trains every weight of the source model on clean batches, then freezes them again.
const backbone = createBackbone(config);
const task = trainSyntheticSource(backbone, config);

const runner = buildSafeMetaNet({
  config,
  modules: [backbonesModule, adaptersModule, proxiesModule, policiesModule],
  logger,
  backbone,
});

streamSyntheticBatches(runner, task, config, { batches: STREAM_BATCHES, batchSize: BATCH_SIZE });

process.stdout.write(formatSummary(runner.summary(), runner.proxy.name));
console.log('Trainable adapter parameters per layer in scope:');
for (const layerName of runner.scope) {
  const layer = backbone.layers.find((spec) => spec.name === layerName);
  const adapter = runner.adapters.get(layerName);
  if (layer === undefined || !(adapter instanceof LoraAdapter)) {
    throw new Error(`Layer ${layerName} is in the scope but has no LoRA adapter.`);
  }
  // B starts at zero, so a non-zero norm shows that accepted updates trained this layer's adapter.
  const normOfB = tf.tidy(() => adapter.b.norm().dataSync()[0] ?? Number.NaN);
  const parameters = adapter.a.size + adapter.b.size;
  console.log(
    `  ${layerName} (${describeLayer(layer)}): ${parameters} parameters, ` +
      `A [${adapter.a.shape.join(', ')}] + B [${adapter.b.shape.join(', ')}], norm of B ${normOfB.toFixed(4)}`,
  );
}
runner.dispose();
backbone.dispose();

function describeLayer(layer: LayerSpec): string {
  if (layer.kind === 'dense') {
    return `dense ${layer.inputSize} -> ${layer.outputSize}`;
  }
  return `conv2d ${layer.kernelSize}x${layer.kernelSize}, ${layer.inputSize} -> ${layer.outputSize} channels`;
}
