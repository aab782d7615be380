// Run: pnpm --filter @safe-metanet/example-config-file start
// Loads the run's settings from safe-metanet.yaml in this example's folder, written in the Python
// prototype's snake_case keys, then adapts a trained MLP to a shifted stream with them.
import 'reflect-metadata';

import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { SeededRandom, SyntheticTask, trainBackbone } from '@safe-metanet/cli';
import { buildSafeMetaNet, loadConfigFile, selectBackend, StreamLogger, type RunSummary } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

// The file sits in the example's folder, one level above both src/ and dist/, so the path does not
// depend on the working directory that pnpm or node starts in.
const configPath = fileURLToPath(new URL('../safe-metanet.yaml', import.meta.url));
const config = loadConfigFile(configPath);
const logger = new StreamLogger(config.logLevel);
await selectBackend(config.backend, logger);
console.log(
  `Config ${configPath}: ${config.adapterType} rank ${config.loraRank}, lr ${config.lr}, ${config.numSteps} steps per attempt, ` +
    `rollback threshold ${config.rollbackThreshold}, schedule [${config.expansionSchedule.join(', ')}], seed ${config.seed}`,
);

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
