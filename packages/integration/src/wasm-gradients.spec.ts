import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { selectBackend, silentLogger, type ActiveBackend, type RunRecord, type SafeMetaNet } from '@safe-metanet/core';
import { EntropyProxy } from '@safe-metanet/proxies';

import { expectTensorClose } from '../../core/src/test-support/expect-tensor-close.js';
import { buildHarness, SMALL_MODELS } from './harness.js';

/*
 * The wasm backend against the cpu reference on whole models: the frozen forward pass, the
 * gradients of the loop's loss with respect to every adapter variable, and 20 loop steps.
 */

const RELATIVE_TOLERANCE = 1e-4;
const BATCH_SIZE = 6;

const ADAPTER_TYPES = ['lora', 'linear_adapter'] as const;
const BACKBONES = ['mlp', 'cnn'] as const;

// num_layers 3: the MLP has three dense layers, the CNN two 3x3 conv layers (the first followed by a
// 2x2 max-pool, 8 -> 4 pixels) and a dense layer.
const CASES = BACKBONES.flatMap((backbone) =>
  ADAPTER_TYPES.map((adapter) => ({
    backbone,
    adapter,
    // Threshold 1e6 rejects every attempt, so the first step expands the scope to every layer.
    settings: { ...SMALL_MODELS[backbone], num_layers: 3, adapter_type: adapter, rollback_threshold: 1e6, seed: 3 },
  })),
);

/** What one backend computed for a case, copied out of the tensors. */
interface BackendResult {
  readonly frozenLogits: Float32Array;
  readonly adaptedLogits: Float32Array;
  readonly loss: number;
  /** Gradient of the loss for each adapter variable, in scopeVariables() order. */
  readonly gradients: Float32Array[];
  /** Values assigned to the adapter variables, in scopeVariables() order. */
  readonly adapterValues: Float32Array[];
  readonly variableNames: string[];
}

/** Max error per case, printed after the tests so that a run shows the margin to the tolerance. */
const maxErrors: Record<string, number | string>[] = [];

afterAll(async () => {
  if (maxErrors.length > 0) {
    console.info('wasm against cpu, max |wasm - cpu| / max(1, |cpu|):');
    console.table(maxErrors);
  }
  await selectBackend('cpu', silentLogger);
});

/** Returns max |actual - expected| / max(1, |expected|), the quantity expectTensorClose bounds. */
function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let max = 0;
  for (let index = 0; index < expected.length; index++) {
    const expectedValue = expected[index] as number;
    const error = Math.abs((actual[index] as number) - expectedValue) / Math.max(1, Math.abs(expectedValue));
    max = Math.max(max, error);
  }
  return max;
}

function maxOver(actual: readonly ArrayLike<number>[], expected: readonly ArrayLike<number>[]): number {
  return Math.max(...expected.map((values, index) => maxRelativeError(actual[index] as ArrayLike<number>, values)));
}

/** Returns seeded values in [-0.5, 0.5) for every variable. tfjs draws seeded values in JavaScript, so they match on every backend. */
function seededValues(variables: readonly tf.Variable[], seed: number): Float32Array[] {
  return variables.map((variable, index) =>
    tf.tidy(() => tf.randomUniform(variable.shape, -0.5, 0.5, 'float32', seed + index).dataSync() as Float32Array),
  );
}

/** Computes the loop's loss from its parts: entropy of the adapted logits plus lambda * sum(theta^2) over the scope. */
function loopLoss(runner: SafeMetaNet, batch: tf.Tensor): tf.Scalar {
  const entropy = new EntropyProxy().compute({ input: batch, output: runner.backbone.forward(batch, runner.adapters) });
  const squares = runner.scopeVariables().map((variable) => variable.square().sum());
  return entropy.add(tf.addN(squares).mul(runner.config.trustRegionLambda));
}

function entropyOf(runner: SafeMetaNet, batch: tf.Tensor): number {
  return tf.tidy(() => new EntropyProxy().compute({ input: batch, output: runner.backbone.forward(batch, runner.adapters) }).arraySync());
}

/**
 * Builds the case's runner on `backend`, steps it once on the batch so that every layer is in scope,
 * assigns `adapterValues` (or seeded values when absent) to every adapter variable and returns the
 * logits and loss gradients. Checks that no tensor outlives the call.
 */
async function computeOnBackend(
  backend: ActiveBackend,
  settings: Record<string, unknown>,
  inputs: Float32Array,
  adapterValues?: readonly Float32Array[],
): Promise<BackendResult> {
  await selectBackend(backend, silentLogger);
  expect(tf.getBackend()).toBe(backend);
  const tensorsBefore = tf.memory().numTensors;

  const harness = buildHarness(settings);
  const { runner, backbone } = harness;
  const batch = tf.tensor(inputs, [BATCH_SIZE, ...backbone.inputShape]);
  const record: RunRecord = runner.step(batch);
  expect(runner.scope).toHaveLength(backbone.layers.length);

  // Every adapter is back at its initial zero delta, so the rebuilt entropy equals the loop's first measurement.
  expect(entropyOf(runner, batch)).toBe(record.metric_before);

  const variables = runner.scopeVariables();
  const values = adapterValues ?? seededValues(variables, 1234);
  variables.forEach((variable, index) => {
    tf.tidy(() => variable.assign(tf.tensor(values[index] as Float32Array, variable.shape)));
  });

  const { value, grads } = tf.variableGrads(() => loopLoss(runner, batch), variables);
  const frozen = runner.predictSource(batch);
  const adapted = runner.predict(batch);
  const result: BackendResult = {
    frozenLogits: frozen.dataSync() as Float32Array,
    adaptedLogits: adapted.dataSync() as Float32Array,
    loss: value.dataSync()[0] as number,
    gradients: variables.map((variable) => grads[variable.name]?.dataSync() as Float32Array),
    adapterValues: variables.map((variable) => variable.dataSync() as Float32Array),
    variableNames: variables.map((variable) => variable.name),
  };

  tf.dispose([value, frozen, adapted, batch, ...Object.values(grads)]);
  harness.dispose();
  expect(tf.memory().numTensors).toBe(tensorsBefore);
  return result;
}

/** Returns one seeded batch per seed, in the input shape of the case's backbone. */
async function batchInputs(settings: Record<string, unknown>, seeds: readonly number[]): Promise<Float32Array[]> {
  await selectBackend('cpu', silentLogger);
  const harness = buildHarness(settings);
  const shape = [BATCH_SIZE, ...harness.backbone.inputShape];
  harness.dispose();
  return seeds.map((seed) => tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array));
}

describe('wasm against cpu', () => {
  it.each(CASES)('$backbone with $adapter: logits and loss gradients match', async ({ backbone, adapter, settings }) => {
    const [inputs = new Float32Array()] = await batchInputs(settings, [11]);
    const cpu = await computeOnBackend('cpu', settings, inputs);
    const wasm = await computeOnBackend('wasm', settings, inputs, cpu.adapterValues);

    // Both runners carry the same adapters with the same assigned values.
    expect(wasm.variableNames.map(withoutNumber)).toEqual(cpu.variableNames.map(withoutNumber));
    expect(wasm.adapterValues).toEqual(cpu.adapterValues);
    // Every gradient has a nonzero element, so that no comparison below is between two all-zero tensors.
    for (const [index, gradient] of cpu.gradients.entries()) {
      expect(maxAbs(gradient), `cpu gradient of ${cpu.variableNames[index]}`).toBeGreaterThan(0);
    }

    expectCloseNamed('frozen logits', wasm.frozenLogits, cpu.frozenLogits);
    expectCloseNamed('adapted logits', wasm.adaptedLogits, cpu.adaptedLogits);
    expectCloseNamed('loss', [wasm.loss], [cpu.loss]);
    expect(wasm.gradients).toHaveLength(cpu.gradients.length);
    for (const [index, gradient] of cpu.gradients.entries()) {
      expectCloseNamed(`gradient of ${cpu.variableNames[index]}`, wasm.gradients[index] as Float32Array, gradient);
    }

    maxErrors.push({
      case: `${backbone} ${adapter}`,
      variables: cpu.gradients.length,
      frozen_logits: maxRelativeError(wasm.frozenLogits, cpu.frozenLogits),
      adapted_logits: maxRelativeError(wasm.adaptedLogits, cpu.adaptedLogits),
      loss: maxRelativeError([wasm.loss], [cpu.loss]),
      gradients: maxOver(wasm.gradients, cpu.gradients),
    });
  });
});

/** Runs a fresh runner on `backend` over the batches and returns its records. */
async function runLoop(backend: ActiveBackend, settings: Record<string, unknown>, batches: readonly Float32Array[]): Promise<RunRecord[]> {
  await selectBackend(backend, silentLogger);
  const tensorsBefore = tf.memory().numTensors;
  const harness = buildHarness(settings);

  const records = batches.map((inputs) => {
    const batch = tf.tensor(inputs, [BATCH_SIZE, ...harness.backbone.inputShape]);
    const record = harness.runner.step(batch);
    batch.dispose();
    return record;
  });

  harness.dispose();
  expect(tf.memory().numTensors).toBe(tensorsBefore);
  return records;
}

function metricsOf(record: RunRecord): (number | null)[] {
  return [
    record.metric_before,
    record.metric_after,
    ...record.attempt_metrics.flatMap((attempt) => [attempt.metric_before, attempt.metric_after]),
  ];
}

describe('loop on wasm and cpu', () => {
  it('cnn with lora: 20 steps give the same decisions', async () => {
    // With lr 0.02 and threshold 0.01 this run (on cpu) accepts at scope 2 from step 0, grows to scope 3
    // at step 9 and then mixes accepts and rejects. The closest decision clears the threshold by 1.2e-3.
    const settings = { ...SMALL_MODELS.cnn, num_layers: 3, lr: 0.02, rollback_threshold: 0.01, seed: 5 };
    const seeds = Array.from({ length: 20 }, (_, step) => 600 + step);
    const batches = await batchInputs(settings, seeds);

    const cpu = await runLoop('cpu', settings, batches);
    const wasm = await runLoop('wasm', settings, batches);

    expect(wasm.map((record) => record.action)).toEqual(cpu.map((record) => record.action));
    expect(wasm.map((record) => record.scope)).toEqual(cpu.map((record) => record.scope));
    expect(wasm.map((record) => record.attempts)).toEqual(cpu.map((record) => record.attempts));
    expect(wasm.map((record) => record.reject_reason)).toEqual(cpu.map((record) => record.reject_reason));
    // The run covers both outcomes and an expansion, so that the equalities above are not trivial.
    expect(cpu.some((record) => record.action === 'accept')).toBe(true);
    expect(cpu.some((record) => record.action === 'reject')).toBe(true);
    expect(cpu.some((record) => record.scope_expanded)).toBe(true);

    let maxError = 0;
    for (const [index, record] of cpu.entries()) {
      const expected = metricsOf(record);
      const actual = metricsOf(wasm[index] as RunRecord);
      expect(expected.every((value) => value !== null)).toBe(true);
      expectCloseNamed(`metrics of step ${index}`, actual as number[], expected as number[]);
      maxError = Math.max(maxError, maxRelativeError(actual as number[], expected as number[]));
    }
    maxErrors.push({ case: 'cnn lora, 20 loop steps', metrics: maxError });
  });
});

/** Runs expectTensorClose at RELATIVE_TOLERANCE and puts `label` in front of its failure message. */
function expectCloseNamed(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  try {
    expectTensorClose(actual, expected, RELATIVE_TOLERANCE);
  } catch (error) {
    throw new Error(`${label}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function withoutNumber(name: string): string {
  return name.replace(/\/\d+$/, '');
}

function maxAbs(values: Float32Array): number {
  return values.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
}
