import { createBackbone } from '@safe-metanet/backbones';
import { buildSafeMetaNet, PROTOTYPE_SETTINGS, selectBackend, silentLogger, type SafeMetaNetConfig } from '@safe-metanet/core';

import { formatFlags, integerFlag, parseFlags, stringFlag, type FlagSpecs } from '../flags.js';
import { openLogFile } from '../log-file.js';
import { formatHeader, formatSummary } from '../output.js';
import { commandModules } from '../plugins.js';
import { SeededRandom } from '../random.js';
import { commandLogger, configFromFlags, RUNNER_FLAGS } from '../run-options.js';
import { streamSyntheticBatches, trainSyntheticSource } from '../synthetic-run.js';
import { evaluateBackbone } from '../training.js';

const DEMO_FLAGS: FlagSpecs = {
  steps: { type: 'string', value: 'N', help: 'number of shifted batches to adapt on (default 50)' },
  'batch-size': { type: 'string', value: 'N', help: 'samples per batch (default 32)' },
  ...RUNNER_FLAGS,
};

const EVALUATION_SAMPLES = 2000;

/**
 * Returns the demo's settings unless the config file or a flag sets them. The demo is the prototype's, so it
 * runs the prototype's step. On a CNN, 12-pixel images and 16 channels train in seconds, where the general
 * defaults (28 pixels, 64 channels) take minutes on the wasm backend.
 */
function demoDefaults(config: SafeMetaNetConfig): Record<string, unknown> {
  const cnnSize = config.backbone === 'cnn' ? { image_size: 12, hidden_dim: 16 } : {};
  return { ...PROTOTYPE_SETTINGS, ...cnnSize };
}

/** Help text of the demo command. */
export const DEMO_HELP = `Usage: safe-metanet demo [flags]

Trains a small source model on a synthetic task, then adapts it with Safe MetaNet on a stream of
shifted batches, printing one line per batch (to standard error) and a summary with the adapted
accuracy beside the frozen model's. The demo runs the prototype's step: proxy entropy, policy
threshold and reset none, each unless the config sets that key.

${formatFlags(DEMO_FLAGS)}
`;

/** Runs the demo; returns the exit status. */
export async function demoCommand(args: readonly string[]): Promise<number> {
  const values = parseFlags('demo', args, DEMO_FLAGS);
  if (values['help'] === true) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const config = configFromFlags(values, demoDefaults);
  const modules = await commandModules(values);
  const steps = integerFlag(values, 'steps', 1) ?? 50;
  const batchSize = integerFlag(values, 'batch-size', 1) ?? 32;
  const logFile = openLogFile(stringFlag(values, 'log-file'));

  try {
    const logger = commandLogger(config);
    // The backend line waits until the runner is built, because building it checks the settings that need
    // a model (plugin names, schedule layers, LoRA rank), and an invalid config should print only its error.
    const backendMessages: string[] = [];
    const backend = await selectBackend(config.backend, { ...silentLogger, info: (message) => backendMessages.push(message) });
    const backbone = createBackbone(config);
    // The runner reads the backbone weights only when it steps, so building it before source training changes no result.
    const runner = buildSafeMetaNet({ config, modules, logger, backbone });
    for (const message of backendMessages) {
      logger.info(message);
    }
    process.stdout.write(formatHeader('Safe MetaNet demo', config, { steps, batch_size: batchSize, active_backend: backend }));

    const task = trainSyntheticSource(backbone, config);
    const evaluationRandom = new SeededRandom(config.seed + 2);
    const cleanAccuracy = evaluateBackbone(backbone, task.sample(EVALUATION_SAMPLES, evaluationRandom, false));
    const shiftedAccuracy = evaluateBackbone(backbone, task.sample(EVALUATION_SAMPLES, evaluationRandom, true));
    process.stdout.write(
      `Source model: ${(cleanAccuracy * 100).toFixed(1)}% accuracy on clean data, ` +
        `${(shiftedAccuracy * 100).toFixed(1)}% on shifted data (${EVALUATION_SAMPLES} separate samples each; ` +
        'the summary scores the streamed batches).\n',
    );

    streamSyntheticBatches(runner, task, config, { batches: steps, batchSize, onRecord: (record) => logFile?.write(record) });

    process.stdout.write(formatSummary(runner.summary(), runner.proxy.name));
    runner.dispose();
    backbone.dispose();
    logFile?.close();
    if (logFile !== undefined) {
      process.stdout.write(`Records: ${logFile.target}\n`);
    }
    return 0;
  } finally {
    logFile?.abort();
  }
}
