/** Why an attempt was rejected. */
export type RejectReason = 'no_improvement' | 'non_finite';

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
