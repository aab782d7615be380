import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
import { AlwaysAcceptPolicy, ThresholdPolicy } from './threshold-policy.js';

/** Binds the acceptance policies (`threshold`, `always_accept`) and expansion schedules (`layer_by_layer`, `fixed`). */
export const policiesModule = new ContainerModule((options) => {
  bindPlugin(options, 'policy', 'threshold', ThresholdPolicy);
  bindPlugin(options, 'policy', 'always_accept', AlwaysAcceptPolicy);
  bindPlugin(options, 'expansion', 'layer_by_layer', LayerByLayerSchedule);
  bindPlugin(options, 'expansion', 'fixed', FixedSchedule);
});
