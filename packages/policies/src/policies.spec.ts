import 'reflect-metadata';

import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';

import {
  AcceptancePolicyId,
  ConfigId,
  ExpansionScheduleId,
  resolveConfig,
  type SafeMetaNetConfig,
} from '@safe-metanet/core';

import { policiesModule } from './policies-module.js';
import { FixedSchedule, LayerByLayerSchedule } from './expansion-schedules.js';
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
    expect(container.get(ExpansionScheduleId, { name: 'layer_by_layer' })).toBeInstanceOf(LayerByLayerSchedule);
    expect(container.get(ExpansionScheduleId, { name: 'fixed' })).toBeInstanceOf(FixedSchedule);
  });
});
