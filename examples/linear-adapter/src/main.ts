// Run: pnpm --filter @safe-metanet/example-linear-adapter start
// Adapts a trained MLP to a shifted stream with the bottleneck adapter (`adapter_type: linear_adapter`)
// in place of LoRA, then prints the adapted accuracy beside the frozen model's.
import 'reflect-metadata';

import * as tf from '@tensorflow/tfjs';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { SyntheticTask, trainBackbone } from '@safe-metanet/cli';
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
const trainingRandom = seededRandom(config.seed + 1);
trainBackbone(backbone, { steps: 300, learningRate: 3e-3, nextBatch: () => task.sample(64, trainingRandom, false) });

const runner = buildSafeMetaNet({
  config,
  modules: [backbonesModule, adaptersModule, proxiesModule, policiesModule],
  logger,
  backbone,
});

// runner.step adapts on the inputs alone. The labels only score the adapted and the frozen predictions.
const streamRandom = seededRandom(config.seed + 3);
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

/** The type SyntheticTask.sample takes for its random numbers: the cli's SeededRandom class. */
type TaskRandom = Parameters<SyntheticTask['sample']>[1];

// NOTE: @safe-metanet/cli does not export SeededRandom, and its private field makes TypeScript reject
// any other object without a cast. This is the same mulberry32 generator, so that a seed draws the
// same batches as `safe-metanet demo` does.
function seededRandom(seed: number): TaskRandom {
  let state = (seed ^ 0x9e3779b9) >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => {
    const u = Math.max(uniform(), 1e-12);
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const integer = (n: number): number => Math.floor(uniform() * n);
  return { uniform, normal, integer } as unknown as TaskRandom;
}
