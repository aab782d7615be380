import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

import type { RejectReason } from './acceptance-policy.js';

/** One attempt within a batch: the scope it trained and the metrics it measured. */
export interface AttemptRecord {
  /** Layers in the scope during the attempt. */
  readonly scope: readonly string[];
  /** Proxy metric before the update; null when not finite. */
  readonly metric_before: number | null;
  /** Proxy metric after the update; null when not finite or when no update ran. */
  readonly metric_after: number | null;
  /** Whether the gate kept the update. */
  readonly accepted: boolean;
  /** Reason for a rejection, null when accepted. */
  readonly reject_reason: RejectReason | null;
  /** Metric on the held-out part of the batch before the update; only with `holdout_fraction` above 0. */
  readonly held_out_before?: number | null;
  /** Metric on the held-out part of the batch after the update; only with `holdout_fraction` above 0. */
  readonly held_out_after?: number | null;
}

/** The record of one batch; the field names are the prototype's, in snake_case. */
export interface RunRecord {
  /** Zero-based batch index. */
  readonly step: number;
  /** Index, in the stream, of the batch's first sample. */
  readonly sample_idx: number;
  /** Whether the batch ended with a kept update. */
  readonly action: 'accept' | 'reject';
  /** Proxy metric before the first attempt; null when not finite. */
  readonly metric_before: number | null;
  /** Proxy metric after the last attempt's update; null when not finite or when no update ran. */
  readonly metric_after: number | null;
  /** Layers in the scope at the end of the batch. */
  readonly scope: readonly string[];
  /** Whether the scope grew during the batch. */
  readonly scope_expanded: boolean;
  /** Number of attempts, one per scope tried. */
  readonly attempts: number;
  /** Gradient steps taken over all attempts. */
  readonly gradient_steps: number;
  /** Reason of the final rejection, null when accepted. */
  readonly reject_reason: RejectReason | null;
  /** Wall-clock time of the batch in milliseconds. */
  readonly duration_ms: number;
  /** Model output that `accuracy` scores: after the batch's accepted update, or before any update of the batch. */
  readonly prediction: 'after_update' | 'before_update';
  /** Every attempt of the batch, in order. */
  readonly attempt_metrics: readonly AttemptRecord[];
  /** Adapted model's accuracy on the batch, in [0, 1]; only on labelled data. */
  readonly accuracy?: number;
  /** Frozen source model's accuracy on the same batch, in [0, 1]; only on labelled data. */
  readonly source_accuracy?: number;
  /** Number of samples in the batch. */
  readonly batch_size: number;
  /** Whether the adapters went back to zero delta and the scope to its first layer before this batch. */
  readonly reset: boolean;
}

/** Totals over a run. */
export interface RunSummary {
  /** Batches processed. */
  readonly total_steps: number;
  /** Batches that ended with a kept update. */
  readonly accepted: number;
  /** Batches that ended with a rollback. */
  readonly rejected: number;
  /** Batches during which the scope grew. */
  readonly expanded: number;
  /** Batches rejected because a metric or loss was not finite. */
  readonly non_finite: number;
  /** Batches before which the adapters were reset. */
  readonly resets: number;
  /** Metric before the first batch's update. */
  readonly first_metric: number | null;
  /** Metric after the last batch's update. */
  readonly last_metric: number | null;
  /** Layers in the scope at the end. */
  readonly final_scope: readonly string[];
  /** Frozen model's accuracy over every labelled sample, in [0, 1]; only on labelled data. */
  readonly source_accuracy?: number;
  /** Adapted model's accuracy over every labelled sample, in [0, 1]; only on labelled data. */
  readonly adapted_accuracy?: number;
}

/** Sums up records; accuracies are weighted by batch size. */
export function summarizeRecords(records: readonly RunRecord[]): RunSummary {
  let accepted = 0;
  let expanded = 0;
  let nonFinite = 0;
  let resets = 0;
  let labelled = 0;
  let sourceCorrect = 0;
  let adaptedCorrect = 0;

  for (const record of records) {
    if (record.action === 'accept') {
      accepted++;
    }
    if (record.scope_expanded) {
      expanded++;
    }
    if (record.reject_reason === 'non_finite') {
      nonFinite++;
    }
    if (record.reset) {
      resets++;
    }
    if (record.accuracy !== undefined && record.source_accuracy !== undefined) {
      labelled += record.batch_size;
      adaptedCorrect += record.accuracy * record.batch_size;
      sourceCorrect += record.source_accuracy * record.batch_size;
    }
  }

  const summary: RunSummary = {
    total_steps: records.length,
    accepted,
    rejected: records.length - accepted,
    expanded,
    non_finite: nonFinite,
    resets,
    first_metric: records[0]?.metric_before ?? null,
    last_metric: records.at(-1)?.metric_after ?? null,
    final_scope: records.at(-1)?.scope ?? [],
  };
  if (labelled === 0) {
    return summary;
  }
  return { ...summary, source_accuracy: sourceCorrect / labelled, adapted_accuracy: adaptedCorrect / labelled };
}

/**
 * Writes JSON Lines to a temporary file beside `target` and renames it into place on `close`,
 * so that a crash never leaves a half-written file under the target name.
 */
export class JsonLinesWriter {
  readonly target: string;
  readonly #temporary: string;
  #fd: number | undefined;

  constructor(target: string) {
    this.target = target;
    this.#temporary = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    mkdirSync(path.dirname(target), { recursive: true });
    this.#fd = openSync(this.#temporary, 'w');
  }

  /** Appends one object as a line. */
  write(value: unknown): void {
    if (this.#fd === undefined) {
      throw new Error(`JsonLinesWriter for ${this.target} is closed.`);
    }
    writeSync(this.#fd, `${JSON.stringify(value)}\n`);
  }

  /** Closes the file and moves it to the target name. */
  close(): void {
    if (this.#fd === undefined) {
      return;
    }
    closeSync(this.#fd);
    this.#fd = undefined;
    try {
      renameSync(this.#temporary, this.target);
    } catch (error) {
      rmSync(this.#temporary, { force: true });
      throw error;
    }
  }

  /** Closes and deletes the temporary file, leaving any earlier file at the target untouched. */
  abort(): void {
    if (this.#fd === undefined) {
      return;
    }
    closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.#temporary, { force: true });
  }
}

/** Returns `value` when finite, else null, because JSON has no NaN or Infinity. */
export function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
