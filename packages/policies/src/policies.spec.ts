import 'reflect-metadata';

import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';

import {
  AcceptancePolicyId,
  AllOfPolicy,
  ConfigError,
  ConfigId,
  ExpansionScheduleId,
  resolveConfig,
  type GateEvidence,
  type SafeMetaNetConfig,
  type SourceDivergence,
} from '@safe-metanet/core';

import { policiesModule } from './policies-module.js';
import { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
import { HeldOutPolicy } from './held-out-policy.js';
import { SourceAnchorPolicy } from './source-anchor-policy.js';
import { AlwaysAcceptPolicy, ThresholdPolicy } from './threshold-policy.js';

function config(overrides: Record<string, unknown> = {}): SafeMetaNetConfig {
  return resolveConfig(overrides);
}

describe('ThresholdPolicy', () => {
  it.each([
    { before: 2, after: 1.9, threshold: 0, accept: true },
    { before: 2, after: 2, threshold: 0, accept: false },
    { before: 2, after: 2.1, threshold: 0, accept: false },
    { before: 2, after: 1.9, threshold: 0.05, accept: true },
    { before: 2, after: 1.96, threshold: 0.05, accept: false },
    { before: 2, after: 1.9, threshold: 1e6, accept: false },
    { before: 2, after: 2.01, threshold: -0.1, accept: true },
  ])('before $before after $after threshold $threshold', ({ before, after, threshold, accept }) => {
    const policy = new ThresholdPolicy(config({ rollback_threshold: threshold }));

    const decision = policy.decide({ metricBefore: before, metricAfter: after, step: 0, attempt: 0 });

    expect(decision.accept).toBe(accept);
    expect(decision.reason).toBe(accept ? undefined : 'no_improvement');
  });
});

function evidence(fields: Partial<GateEvidence> & { divergence?: SourceDivergence }): GateEvidence {
  const divergence = fields.divergence ?? { agreement: 1, kl: 0 };
  const base = { metricBefore: 2, metricAfter: 1.9, step: 0, attempt: 0, sourceDivergence: () => divergence };
  return { ...base, ...fields };
}

describe('HeldOutPolicy', () => {
  it.each([
    { heldOutBefore: 1, heldOutAfter: 0.9, accept: true },
    { heldOutBefore: 1, heldOutAfter: 1, accept: false },
    { heldOutBefore: 1, heldOutAfter: 1.2, accept: false },
  ])('held-out $heldOutBefore to $heldOutAfter', ({ heldOutBefore, heldOutAfter, accept }) => {
    const policy = new HeldOutPolicy(config({ holdout_fraction: 0.25 }));

    // The training-part metrics improve in every row, so only the held-out ones decide.
    const decision = policy.decide(evidence({ heldOut: { metricBefore: heldOutBefore, metricAfter: heldOutAfter } }));

    expect(decision.accept).toBe(accept);
  });

  it('falls back to batch metrics without a held-out part', () => {
    const policy = new HeldOutPolicy(config({ holdout_fraction: 0.25 }));

    expect(policy.decide(evidence({ metricBefore: 2, metricAfter: 1.5 })).accept).toBe(true);
    expect(policy.decide(evidence({ metricBefore: 2, metricAfter: 2.5 })).accept).toBe(false);
  });

  it('requires a holdout fraction', () => {
    expect(() => new HeldOutPolicy(config())).toThrow(ConfigError);
    expect(() => new HeldOutPolicy(config())).toThrow("'holdout_fraction': 0");
  });
});

describe('SourceAnchorPolicy', () => {
  it.each([
    { agreement: 0.95, kl: 0.1, accept: true },
    { agreement: 0.85, kl: 0.1, accept: false },
    { agreement: 0.95, kl: 0.6, accept: false },
    { agreement: 0.9, kl: 0.5, accept: true },
  ])('agreement $agreement kl $kl', ({ agreement, kl, accept }) => {
    const policy = new SourceAnchorPolicy(config({ anchor_min_agreement: 0.9, anchor_max_kl: 0.5 }));

    const decision = policy.decide(evidence({ divergence: { agreement, kl } }));

    expect(decision.accept).toBe(accept);
    expect(decision.reason).toBe(accept ? undefined : 'source_divergence');
  });
});

describe('AllOfPolicy', () => {
  it('needs every policy to accept', () => {
    const threshold = new ThresholdPolicy(config());
    const anchor = new SourceAnchorPolicy(config({ anchor_min_agreement: 0.9 }));
    const both = new AllOfPolicy([threshold, anchor]);

    expect(both.name).toBe('threshold+source_anchor');
    expect(both.decide(evidence({})).accept).toBe(true);
    expect(both.decide(evidence({ metricAfter: 2.1 })).reason).toBe('no_improvement');
    expect(both.decide(evidence({ divergence: { agreement: 0.5, kl: 0 } })).reason).toBe('source_divergence');
  });
});

describe('AlwaysAcceptPolicy', () => {
  it('accepts a worse metric', () => {
    const decision = new AlwaysAcceptPolicy().decide();

    expect(decision.accept).toBe(true);
  });
});

describe('expansion schedules', () => {
  it('layer by layer adds the next missing layer', () => {
    const schedule = new LayerByLayerSchedule(config());

    expect(schedule.order).toEqual(['layer_2', 'layer_1', 'layer_0']);
    expect(schedule.next(['layer_2'])).toBe('layer_1');
    expect(schedule.next(['layer_2', 'layer_1'])).toBe('layer_0');
    expect(schedule.next(['layer_2', 'layer_1', 'layer_0'])).toBeUndefined();
  });

  it('fixed never grows', () => {
    const schedule = new FixedSchedule(config({ expansion_schedule: ['layer_1', 'layer_0'] }));

    expect(schedule.order).toEqual(['layer_1']);
    expect(schedule.next()).toBeUndefined();
  });
});

describe('policiesModule', () => {
  it('binds every plugin under its name', () => {
    const container = new Container();
    container.bind(ConfigId).toConstantValue(config());
    container.load(policiesModule);

    expect(container.get(AcceptancePolicyId, { name: 'threshold' })).toBeInstanceOf(ThresholdPolicy);
    expect(container.get(AcceptancePolicyId, { name: 'always_accept' })).toBeInstanceOf(AlwaysAcceptPolicy);
    expect(container.get(AcceptancePolicyId, { name: 'source_anchor' })).toBeInstanceOf(SourceAnchorPolicy);
    expect(container.get(ExpansionScheduleId, { name: 'layer_by_layer' })).toBeInstanceOf(LayerByLayerSchedule);
    expect(container.get(ExpansionScheduleId, { name: 'fixed' })).toBeInstanceOf(FixedSchedule);
  });
});
