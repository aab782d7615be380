import { describe, expect, it } from 'vitest';

import { checkIdentity, findIdentityMismatch, type RunIdentity } from './checkpoint.js';

const IDENTITY: RunIdentity = {
  config: { lr: 0.001, memory_size: 0 },
  dataset: 'mnist',
  dataset_fingerprint: 'abc',
  corruption: 'contrast',
  severity: 3,
  batch_size: 64,
  max_samples: null,
  source_model: 'models/mnist-mlp.smnw',
};

/** Returns the identity that a version without the memory wrote: no memory_size key. */
function olderIdentity(): RunIdentity {
  const { memory_size: _memorySize, ...config } = IDENTITY.config;
  return { ...IDENTITY, config };
}

describe('findIdentityMismatch', () => {
  it('matches equal identities', () => {
    expect(findIdentityMismatch(IDENTITY, { ...IDENTITY })).toBeUndefined();
  });

  it('reads a missing memory_size as 0', () => {
    expect(findIdentityMismatch(olderIdentity(), IDENTITY)).toBeUndefined();
  });

  it('names memory_size when the run has a memory', () => {
    const current = { ...IDENTITY, config: { ...IDENTITY.config, memory_size: 128 } };

    expect(findIdentityMismatch(olderIdentity(), current)).toEqual({ name: 'config.memory_size', saved: 0, current: 128 });
  });

  it('tells how to resume an older checkpoint', () => {
    const current = { ...IDENTITY, config: { ...IDENTITY.config, memory_size: 128 } };

    expect(() => checkIdentity('ck.json', olderIdentity(), current)).toThrow(
      "Checkpoint file ck.json comes from a version without the config key 'memory_size', whose runs behaved as memory_size 0, but this run has 128; add 'memory_size: 0' to the config.",
    );
  });

  it('names the first differing field', () => {
    expect(findIdentityMismatch(IDENTITY, { ...IDENTITY, severity: 5 })).toEqual({ name: 'severity', saved: 3, current: 5 });
  });
});
