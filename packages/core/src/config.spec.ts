import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import {
  closestKey,
  defaultConfig,
  loadConfigFile,
  overrideConfig,
  parseConfig,
  PROTOTYPE_SETTINGS,
  resolveConfig,
  toSnakeCase,
} from './config.js';
import { ConfigError } from './errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const prototypeConfig = path.resolve(here, '../../../../shared/fixtures/prototype-default.yaml');
const fixtureCopy = path.resolve(here, 'test-support/prototype-default.yaml');

function expectConfigError(action: () => unknown, key: string, fragments: readonly string[]): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const error = caught as ConfigError;
  expect(error.key).toBe(key);
  expect(error.exitStatus).toBe(2);
  for (const fragment of fragments) {
    expect(error.message).toContain(fragment);
  }
}

describe('config defaults', () => {
  it('match the prototype defaults', () => {
    const config = defaultConfig();

    expect(config.backbone).toBe('mlp');
    expect(config.hiddenDim).toBe(64);
    expect(config.numLayers).toBe(3);
    expect(config.inputDim).toBe(32);
    expect(config.outputDim).toBe(10);
    expect(config.adapterType).toBe('lora');
    expect(config.loraRank).toBe(4);
    expect(config.loraAlpha).toBe(4);
    expect(config.adapterBottleneck).toBe(8);
    expect(config.lr).toBe(0.001);
    expect(config.numSteps).toBe(1);
    expect(config.trustRegionLambda).toBe(0.01);
    expect(config.rollbackThreshold).toBe(0);
    expect(config.expansionSchedule).toEqual(['layer_2', 'layer_1', 'layer_0']);
    expect(config.disableRollback).toBe(false);
    expect(config.disableScopeExpansion).toBe(false);
    expect(config.logLevel).toBe('INFO');
  });

  it('choose the recommended step', () => {
    const config = defaultConfig();

    expect(config.proxy).toBe('infomax');
    expect(config.policy).toBe('threshold+source_anchor');
    expect(config.reset).toBe('on_drift');
    expect(config.anchorMinAgreement).toBe(0.95);
    expect(config.anchorMaxKl).toBe(0.5);
    expect(config.memorySize).toBe(128);
  });

  it('give the prototype step with PROTOTYPE_SETTINGS', () => {
    const config = resolveConfig(PROTOTYPE_SETTINGS);

    expect(config.proxy).toBe('entropy');
    expect(config.policy).toBe('threshold');
    expect(config.reset).toBe('none');
    expect(config.memorySize).toBe(0);
  });

  it('loads the prototype file unchanged', () => {
    const file = [prototypeConfig, fixtureCopy].find((candidate) => {
      try {
        loadConfigFile(candidate);
        return true;
      } catch {
        return false;
      }
    });
    expect(file).toBeDefined();

    const config = loadConfigFile(file as string);

    expect(config).toEqual(defaultConfig());
  });

  it('schedule follows num_layers when unset', () => {
    const config = resolveConfig({ num_layers: 5 });

    expect(config.expansionSchedule).toEqual(['layer_4', 'layer_3', 'layer_2', 'layer_1', 'layer_0']);
  });

  it('lora_alpha follows lora_rank when unset', () => {
    expect(resolveConfig({ lora_rank: 8 }).loraAlpha).toBe(8);
    expect(resolveConfig({ lora_rank: 8, lora_alpha: 16 }).loraAlpha).toBe(16);
  });

  it('round-trips through snake_case', () => {
    const config = resolveConfig({ lr: 0.01, expansion_schedule: ['layer_1', 'layer_0'], seed: 7 });

    expect(resolveConfig(toSnakeCase(config))).toEqual(config);
  });

  it('overrides move dependent defaults', () => {
    const base = defaultConfig();

    const changed = overrideConfig(base, { num_layers: 4, lora_rank: 2 });

    expect(changed.expansionSchedule).toEqual(['layer_3', 'layer_2', 'layer_1', 'layer_0']);
    expect(changed.loraAlpha).toBe(2);
  });
});

describe('config validation', () => {
  it.each([
    { raw: { learning_rate: 0.1 }, key: 'learning_rate', fragments: ["Unknown config key 'learning_rate'", "Did you mean 'lr'"] },
    { raw: { hiden_dim: 3 }, key: 'hiden_dim', fragments: ["Did you mean 'hidden_dim'"] },
    { raw: { lr: '0.1' }, key: 'lr', fragments: ["'lr'", 'string "0.1"', 'expected a finite number'] },
    { raw: { lr: 0 }, key: 'lr', fragments: ["'lr': 0", 'greater than 0'] },
    { raw: { anchor_min_agreement: Number.NaN }, key: 'anchor_min_agreement', fragments: ['number NaN', 'expected a finite number'] },
    { raw: { anchor_max_kl: Number.POSITIVE_INFINITY }, key: 'anchor_max_kl', fragments: ['number Infinity', 'expected a finite number'] },
    { raw: { lr: -1 }, key: 'lr', fragments: ['greater than 0'] },
    { raw: { num_layers: 1 }, key: 'num_layers', fragments: ["'num_layers': 1", 'at least 2'] },
    { raw: { num_layers: 2.5 }, key: 'num_layers', fragments: ['expected an integer of at least 2'] },
    { raw: { memory_size: 1.5 }, key: 'memory_size', fragments: ['number 1.5', 'expected an integer from 0 to 4096'] },
    { raw: { memory_size: 'abc' }, key: 'memory_size', fragments: ['string "abc"', 'expected a finite integer from 0 to 4096'] },
    { raw: { memory_size: 5000 }, key: 'memory_size', fragments: ['5000', 'it must be at most 4096'] },
    { raw: { disable_rollback: 'yes' }, key: 'disable_rollback', fragments: ['expected a boolean'] },
    { raw: { expansion_schedule: [] }, key: 'expansion_schedule', fragments: ['list at least one layer'] },
    { raw: { expansion_schedule: 'layer_2' }, key: 'expansion_schedule', fragments: ['expected a list of layer names'] },
    { raw: { expansion_schedule: ['layer_2', 'layer_2'] }, key: 'expansion_schedule', fragments: ["'layer_2' is listed twice"] },
    { raw: { log_level: 'LOUD' }, key: 'log_level', fragments: ['"LOUD"', 'allowed: DEBUG, INFO, WARNING, ERROR'] },
    { raw: { backend: 'gpu' }, key: 'backend', fragments: ['allowed: auto, tensorflow, wasm, cpu'] },
    { raw: { trust_region_lambda: -0.5 }, key: 'trust_region_lambda', fragments: ['at least 0'] },
    { raw: { lr: null }, key: 'lr', fragments: ['null'] },
    { raw: [1, 2], key: '(root)', fragments: ['expected a mapping'] },
  ])('rejects $key', ({ raw, key, fragments }) => {
    expectConfigError(() => resolveConfig(raw), key, fragments);
  });

  it('reports malformed YAML with line and column', () => {
    expectConfigError(() => parseConfig('lr: 0.1\nhidden_dim: [1, 2\n', 'bad.yaml'), '(yaml)', ['bad.yaml', 'line 3', 'column']);
  });

  it('reports a missing file', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'safe-metanet-config-'));

    expectConfigError(() => loadConfigFile(path.join(folder, 'none.yaml')), '(file)', ['none.yaml', 'file not found']);
  });

  it('accepts an empty file', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'safe-metanet-config-'));
    const file = path.join(folder, 'empty.yaml');
    writeFileSync(file, '');

    expect(loadConfigFile(file)).toEqual(defaultConfig());
  });

  it('closest key is by edit distance', () => {
    expect(closestKey('lora_rnak')).toBe('lora_rank');
    expect(closestKey('num_step')).toBe('num_steps');
  });
});
