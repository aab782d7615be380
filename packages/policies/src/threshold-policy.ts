import { inject, injectable } from 'inversify';

import { ConfigId, type AcceptancePolicy, type GateDecision, type GateEvidence, type SafeMetaNetConfig } from '@safe-metanet/core';

/** The rollback gate: accepts an update only when the metric fell by more than `rollback_threshold`. */
@injectable()
export class ThresholdPolicy implements AcceptancePolicy {
  readonly name = 'threshold';
  /** Minimum decrease of the metric, in the metric's units. */
  readonly threshold: number;

  constructor(@inject(ConfigId) config: SafeMetaNetConfig) {
    this.threshold = config.rollbackThreshold;
  }

  decide(evidence: GateEvidence): GateDecision {
    if (evidence.metricAfter < evidence.metricBefore - this.threshold) {
      return { accept: true };
    }
    return { accept: false, reason: 'no_improvement' };
  }
}

/** Accepts every update: the no-rollback ablation (`disable_rollback: true`) and the Tent-style baseline. */
@injectable()
export class AlwaysAcceptPolicy implements AcceptancePolicy {
  readonly name = 'always_accept';

  decide(): GateDecision {
    return { accept: true };
  }
}
