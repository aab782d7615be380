import * as tf from '@tensorflow/tfjs';

import { InputError, type Adapter } from '@safe-metanet/core';

/** Copies of adapter variable values, taken by snapshotAdapters and written back by restoreAdapters. */
export class AdapterSnapshot {
  /** The variables the snapshot was taken of, in adapter order. */
  readonly variables: readonly tf.Variable[];
  readonly #values: tf.Tensor[];
  #disposed = false;

  constructor(variables: readonly tf.Variable[]) {
    this.variables = [...variables];
    this.#values = this.variables.map((variable) => tf.keep(variable.clone()));
  }

  /** The copied values, one per variable; they are released by dispose(). */
  get values(): readonly tf.Tensor[] {
    return this.#values;
  }

  /** Whether dispose() has released the copies. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Releases the copies; a second call does nothing. */
  dispose(): void {
    if (!this.#disposed) {
      tf.dispose(this.#values);
      this.#disposed = true;
    }
  }
}

/** Copies the current value of every variable of `adapters`; dispose the snapshot when done. */
export function snapshotAdapters(adapters: Iterable<Adapter>): AdapterSnapshot {
  const variables: tf.Variable[] = [];
  for (const adapter of adapters) {
    variables.push(...adapter.variables);
  }
  return new AdapterSnapshot(variables);
}

/**
 * Writes the snapshot's values back into its variables, bit for bit. The snapshot stays valid, so it
 * can be restored again. Throws an InputError when the snapshot or one of its variables was disposed.
 */
export function restoreAdapters(snapshot: AdapterSnapshot): void {
  if (snapshot.isDisposed) {
    throw new InputError('Cannot restore adapters from a disposed snapshot. Take a new one with snapshotAdapters.');
  }
  const disposed = snapshot.variables.find((variable) => variable.isDisposed);
  if (disposed !== undefined) {
    throw new InputError(
      `Cannot restore variable '${disposed.name}': it was disposed after the snapshot was taken. ` +
        'Restore before disposing the adapter.',
    );
  }

  snapshot.variables.forEach((variable, index) => {
    variable.assign(snapshot.values[index] as tf.Tensor);
  });
}
