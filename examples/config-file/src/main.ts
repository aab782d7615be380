// Run: pnpm --filter @safe-metanet/example-config-file start
// Loads the run's settings from safe-metanet.yaml in this example's folder, written in the Python
// prototype's snake_case keys, then adapts a trained MLP to a shifted stream with them.
import 'reflect-metadata';

import { fileURLToPath } from 'node:url';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { formatSummary, streamSyntheticBatches, trainSyntheticSource } from '@safe-metanet/cli';
import { buildSafeMetaNet, loadConfigFile, selectBackend, StreamLogger } from '@safe-metanet/core';
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
runner.dispose();
backbone.dispose();
