export { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
export { policiesModule } from './policies-module.js';
export { AlwaysAcceptPolicy, ThresholdPolicy } from './threshold-policy.js';
