// Run: pnpm --filter @safe-metanet/example-linear-adapter start
// Adapts a trained MLP to a shifted stream with the bottleneck adapter (`adapter_type: linear_adapter`)
// in place of LoRA, then prints the adapted accuracy beside the frozen model's.
import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { SeededRandom, SyntheticTask, trainBackbone } from '@safe-metanet/cli';
import { buildSafeMetaNet, resolveConfig, selectBackend, StreamLogger, type RunSummary } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

// resolveConfig takes the YAML file's snake_case keys. Keys left out keep their defaults.
const config = resolveConfig({ adapter_type: 'linear_adapter' });
const logger = new StreamLogger(config.logLevel);
await selectBackend(config.backend, logger);

// trainBackbone trains every weight of the source model on clean batches, then freezes them again.
const backbone = createBackbone(config);
const task = new SyntheticTask({ sampleShape: backbone.inputShape, classes: config.outputDim, seed: config.seed });
const trainingRandom = new SeededRandom(config.seed + 1);
trainBackbone(backbone, { steps: 300, learningRate: 3e-3, nextBatch: () => task.sample(64, trainingRandom, false) });

const runner = buildSafeMetaNet({
  config,
  modules: [backbonesModule, adaptersModule, proxiesModule, policiesModule],
  logger,
  backbone,
});

// runner.step adapts on the inputs alone. The labels only score the adapted and the frozen predictions.
const streamRandom = new SeededRandom(config.seed + 3);
for (let step = 0; step < STREAM_BATCHES; step++) {
  const batch = task.sample(BATCH_SIZE, streamRandom, true);
  const inputs = tf.tensor(batch.inputs, [batch.count, ...backbone.inputShape]);
  runner.step(inputs, batch.labels);
  inputs.dispose();
}

console.log(formatSummary(runner.summary()));
runner.dispose();
backbone.dispose();

function formatSummary(summary: RunSummary): string {
  const percent = (value: number | undefined): string => (value === undefined ? 'n/a' : `${(value * 100).toFixed(2)}%`);
  return [
    `Batches: ${summary.total_steps} (accepted ${summary.accepted}, rejected ${summary.rejected}, expanded ${summary.expanded})`,
    `Entropy: first ${summary.first_metric?.toFixed(4)}, last ${summary.last_metric?.toFixed(4)}`,
    `Final scope: [${summary.final_scope.join(', ')}]`,
    `Accuracy: adapted ${percent(summary.adapted_accuracy)}, frozen source ${percent(summary.source_accuracy)}`,
  ].join('\n');
}
