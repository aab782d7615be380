// Run: pnpm --filter @safe-metanet/example-lora start
// Adapts a trained MLP to a shifted stream with LoRA adapters and the default config, then prints
// the adapted accuracy beside the frozen model's.
import 'reflect-metadata';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { formatSummary, streamSyntheticBatches, trainSyntheticSource } from '@safe-metanet/cli';
import { buildSafeMetaNet, defaultConfig, selectBackend, StreamLogger } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

const config = defaultConfig();
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

// runner.step adapts on the inputs alone. The labels only score the adapted and the frozen predictions.
streamSyntheticBatches(runner, task, config, { batches: STREAM_BATCHES, batchSize: BATCH_SIZE });

process.stdout.write(formatSummary(runner.summary(), runner.proxy.name));
runner.dispose();
backbone.dispose();
