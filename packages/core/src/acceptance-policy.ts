/** Why an attempt was rejected: no metric improvement, a non-finite value, or predictions too far from the frozen model's. */
export type RejectReason = 'no_improvement' | 'non_finite' | 'source_divergence';

/** How far the adapted model's predictions moved from the frozen model's on a batch. */
export interface SourceDivergence {
  /** Share of samples whose predicted class is the same for both models, in [0, 1]. */
  readonly agreement: number;
  /** Mean KL divergence from the frozen model's softmax to the adapted model's, in nats. */
  readonly kl: number;
}

/** The source_anchor bounds of the config: how far from the frozen model's predictions an adapted model may move. */
export interface AnchorBounds {
  /** Minimum agreement, in [0, 1]. */
  readonly anchorMinAgreement: number;
  /** Maximum mean KL divergence, in nats. */
  readonly anchorMaxKl: number;
}

/** Checks whether a divergence keeps to the source_anchor bounds. The source_anchor policy and the on_drift reset both use it. */
export function withinAnchorBounds(divergence: SourceDivergence, bounds: AnchorBounds): boolean {
  return divergence.agreement >= bounds.anchorMinAgreement && divergence.kl <= bounds.anchorMaxKl;
}

/** Proxy metric on the held-out part of a batch, which the update was not trained on. */
export interface HeldOutMetrics {
  readonly metricBefore: number;
  readonly metricAfter: number;
}

/** The evidence an acceptance policy judges. */
export interface GateEvidence {
  /** Proxy metric before the update; finite. */
  readonly metricBefore: number;
  /** Proxy metric after the update; finite. */
  readonly metricAfter: number;
  /** Zero-based batch index. */
  readonly step: number;
  /** Zero-based attempt index within the batch. */
  readonly attempt: number;
  /** Metrics on the held-out part of the batch; present when `holdout_fraction` is above 0. */
  readonly heldOut?: HeldOutMetrics;
  /** Measures, on the whole batch, how far the updated model moved from the frozen one; computed on demand. */
  readonly sourceDivergence: () => SourceDivergence;
}

/** Outcome of the gate for one attempt. */
export interface GateDecision {
  /** Whether the update is kept. */
  readonly accept: boolean;
  /** Reason for a rejection; absent when accepted. */
  readonly reason?: RejectReason;
}

/** Decides whether an adapter update is kept or rolled back. */
export interface AcceptancePolicy {
  /** Config name (`policy`). */
  readonly name: string;
  /** Judges one attempt; called only with finite metrics, because the loop rejects the others itself. */
  decide(evidence: GateEvidence): GateDecision;
}
