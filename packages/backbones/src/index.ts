export {
  BackboneOptionsId,
  type BackboneOptions,
  type BackboneSettings,
  type CnnSettings,
  type MlpSettings,
} from './backbone-settings.js';
export { backbonesModule } from './backbones-module.js';
export { CnnBackbone, createCnnBackbone } from './cnn-backbone.js';
export { BACKBONE_KINDS, createBackbone } from './create-backbone.js';
export { FrozenBackbone, type BackboneStructure, type NamedWeight } from './frozen-backbone.js';
export {
  defaultLayersModelSchedule,
  LayersModelBackbone,
  loadLayersModelBackbone,
  type LayersModelBackboneOptions,
} from './layers-model-backbone.js';
export { layersModelFiles } from './layers-model-files.js';
export { createMlpBackbone, MlpBackbone } from './mlp-backbone.js';
export {
  loadBackboneWeights,
  readBackboneHeader,
  readBackboneMetadata,
  saveBackboneWeights,
  type BackboneWeightsHeader,
  type SaveableBackbone,
  type StoredWeight,
} from './weights-file.js';
