export { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
export { HeldOutPolicy } from './held-out-policy.js';
export { policiesModule } from './policies-module.js';
export { SourceAnchorPolicy } from './source-anchor-policy.js';
export { AlwaysAcceptPolicy, ThresholdPolicy } from './threshold-policy.js';
