import { inject, injectable } from 'inversify';

import { ConfigError, ConfigId, type AcceptancePolicy, type GateDecision, type GateEvidence, type SafeMetaNetConfig } from '@safe-metanet/core';

/**
 * Judges an update on the held-out part of the batch, which the update was not trained on: accepts when
 * the held-out metric fell by more than `rollback_threshold`. The loop holds out the last
 * `holdout_fraction` of each batch; a batch of one sample has no held-out part, so it is judged on itself.
 */
@injectable()
export class HeldOutPolicy implements AcceptancePolicy {
  readonly name = 'held_out';
  readonly threshold: number;

  constructor(@inject(ConfigId) config: SafeMetaNetConfig) {
    if (config.holdoutFraction === 0) {
      throw new ConfigError(
        'holdout_fraction',
        "Invalid value for 'holdout_fraction': 0; the held_out policy needs a held-out part, so set it above 0 (0.25 holds out a quarter of each batch).",
      );
    }
    this.threshold = config.rollbackThreshold;
  }

  decide(evidence: GateEvidence): GateDecision {
    const metrics = evidence.heldOut ?? evidence;
    if (metrics.metricAfter < metrics.metricBefore - this.threshold) {
      return { accept: true };
    }
    return { accept: false, reason: 'no_improvement' };
  }
}
