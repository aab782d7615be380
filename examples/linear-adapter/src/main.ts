// Run: pnpm --filter @safe-metanet/example-linear-adapter start
// Adapts a trained MLP to a shifted stream with the bottleneck adapter (`adapter_type: linear_adapter`)
// in place of LoRA, then prints the adapted accuracy beside the frozen model's.
import 'reflect-metadata';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { formatSummary, streamSyntheticBatches, trainSyntheticSource } from '@safe-metanet/cli';
import { buildSafeMetaNet, resolveConfig, selectBackend, StreamLogger } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

// resolveConfig takes the YAML file's snake_case keys. Keys left out keep their defaults.
const config = resolveConfig({ adapter_type: 'linear_adapter' });
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
