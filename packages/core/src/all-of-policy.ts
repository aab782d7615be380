import type { AcceptancePolicy, GateDecision, GateEvidence } from './acceptance-policy.js';

/** Accepts an update only when every one of its policies accepts it; a rejection carries the first rejecting policy's reason. */
export class AllOfPolicy implements AcceptancePolicy {
  readonly name: string;
  readonly policies: readonly AcceptancePolicy[];

  constructor(policies: readonly AcceptancePolicy[]) {
    this.policies = [...policies];
    this.name = policies.map((policy) => policy.name).join('+');
  }

  decide(evidence: GateEvidence): GateDecision {
    for (const policy of this.policies) {
      const decision = policy.decide(evidence);
      if (!decision.accept) {
        return decision;
      }
    }
    return { accept: true };
  }
}
