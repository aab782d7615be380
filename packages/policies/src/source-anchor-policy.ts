import { inject, injectable } from 'inversify';

import { ConfigId, withinAnchorBounds, type AcceptancePolicy, type AnchorBounds, type GateDecision, type GateEvidence, type SafeMetaNetConfig } from '@safe-metanet/core';

/**
 * Rejects an update that moves the adapted model's predictions too far from the frozen model's on the
 * batch: fewer than `anchor_min_agreement` of the samples keep the frozen model's class, or the mean KL
 * divergence from the frozen softmax exceeds `anchor_max_kl`. Both compare the updated model with the
 * frozen one, so they bound the total drift of the adapters, not only that of one step.
 */
@injectable()
export class SourceAnchorPolicy implements AcceptancePolicy {
  readonly name = 'source_anchor';
  readonly bounds: AnchorBounds;

  constructor(@inject(ConfigId) config: SafeMetaNetConfig) {
    this.bounds = { anchorMinAgreement: config.anchorMinAgreement, anchorMaxKl: config.anchorMaxKl };
  }

  decide(evidence: GateEvidence): GateDecision {
    if (!withinAnchorBounds(evidence.sourceDivergence(), this.bounds)) {
      return { accept: false, reason: 'source_divergence' };
    }
    return { accept: true };
  }
}
