export { adaptersModule } from './adapters-module.js';
export {
  BottleneckAdapter,
  BottleneckAdapterFactory,
  createBottleneckAdapterFactory,
  type BottleneckAdapterOptions,
  type BottleneckSettings,
} from './bottleneck-adapter.js';
export {
  createLoraAdapterFactory,
  LoraAdapter,
  LoraAdapterFactory,
  maxLoraRank,
  type LoraAdapterOptions,
  type LoraSettings,
} from './lora-adapter.js';
export { AdapterSnapshot, restoreAdapters, snapshotAdapters } from './snapshot.js';
