export { main, mainHelp } from './main.js';
export { commandModules, loadPluginModules, standardModules } from './plugins.js';
export { SeededRandom } from './random.js';
export { formatSummary } from './output.js';
export {
  streamSyntheticBatches,
  SYNTHETIC_TRAINING,
  trainSyntheticSource,
  type SyntheticStreamOptions,
} from './synthetic-run.js';
export { SyntheticTask, type LabelledBatch } from './synthetic-task.js';
export { evaluateBackbone, trainBackbone, type TrainingOptions } from './training.js';
