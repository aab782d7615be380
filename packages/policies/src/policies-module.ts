import { ContainerModule } from 'inversify';

import { bindPlugin } from '@safe-metanet/core';

import { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
import { HeldOutPolicy } from './held-out-policy.js';
import { SourceAnchorPolicy } from './source-anchor-policy.js';
import { AlwaysAcceptPolicy, ThresholdPolicy } from './threshold-policy.js';

/** Binds the acceptance policies (`threshold`, `always_accept`, `held_out`, `source_anchor`) and expansion schedules (`layer_by_layer`, `fixed`). */
export const policiesModule = new ContainerModule((options) => {
  bindPlugin(options, 'policy', 'threshold', ThresholdPolicy);
  bindPlugin(options, 'policy', 'always_accept', AlwaysAcceptPolicy);
  bindPlugin(options, 'policy', 'held_out', HeldOutPolicy);
  bindPlugin(options, 'policy', 'source_anchor', SourceAnchorPolicy);
  bindPlugin(options, 'expansion', 'layer_by_layer', LayerByLayerSchedule);
  bindPlugin(options, 'expansion', 'fixed', FixedSchedule);
});
