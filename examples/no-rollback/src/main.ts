// Run: pnpm --filter @safe-metanet/example-no-rollback start
// Runs the no-rollback ablation (`disable_rollback: true`) and the prototype's threshold gate side by side
// on the identical shifted stream, and prints both summaries in one table.
import 'reflect-metadata';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule, createBackbone } from '@safe-metanet/backbones';
import { streamSyntheticBatches, trainSyntheticSource } from '@safe-metanet/cli';
import { buildSafeMetaNet, PROTOTYPE_SETTINGS, resolveConfig, selectBackend, StreamLogger, type RunSummary } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

const STREAM_BATCHES = 30;
const BATCH_SIZE = 32;

// Both runs use the prototype's step (entropy, the threshold gate alone, no reset), so that they differ
// only in the gate, and lr 0.05 in place of the default 0.001. At the default rate the gate accepts all
// 30 updates of this stream (seed 0), so the two runs would be identical.
const gated = resolveConfig({ ...PROTOTYPE_SETTINGS, lr: 0.05 });
const ungated = resolveConfig({ ...PROTOTYPE_SETTINGS, lr: 0.05, disable_rollback: true });
const logger = new StreamLogger(gated.logLevel);
await selectBackend(gated.backend, logger);

// trainSyntheticSource trains every weight of the source model on clean batches, then freezes them again.
const backbone = createBackbone(gated);
const task = trainSyntheticSource(backbone, gated);

// Both runners adapt the same frozen backbone. Each runner owns its adapters, so one runner's updates do not change the other.
const modules = [backbonesModule, adaptersModule, proxiesModule, policiesModule];
const runners = [
  { label: 'threshold gate', runner: buildSafeMetaNet({ config: gated, modules, logger: prefixed('threshold gate'), backbone }) },
  { label: 'no rollback', runner: buildSafeMetaNet({ config: ungated, modules, logger: prefixed('no rollback'), backbone }) },
];

streamSyntheticBatches(
  runners.map(({ runner }) => runner),
  task,
  gated,
  { batches: STREAM_BATCHES, batchSize: BATCH_SIZE },
);

console.log(formatSummaries(runners.map(({ label, runner }) => ({ label, summary: runner.summary() }))));
for (const { runner } of runners) {
  runner.dispose();
}
backbone.dispose();

function prefixed(label: string): StreamLogger {
  return new StreamLogger(gated.logLevel, (line) => process.stderr.write(`[${label}] ${line}`));
}

function formatSummaries(columns: readonly { label: string; summary: RunSummary }[]): string {
  const percent = (value: number | undefined): string => (value === undefined ? 'n/a' : `${(value * 100).toFixed(2)}%`);
  const metric = (value: number | null): string => (value === null ? 'non-finite' : value.toFixed(4));
  const rows: [string, (summary: RunSummary) => string][] = [
    ['batches', (summary) => String(summary.total_steps)],
    ['accepted', (summary) => String(summary.accepted)],
    ['rejected', (summary) => String(summary.rejected)],
    ['expanded', (summary) => String(summary.expanded)],
    ['entropy, first batch', (summary) => metric(summary.first_metric)],
    ['entropy, last batch', (summary) => metric(summary.last_metric)],
    ['final scope', (summary) => summary.final_scope.join(', ')],
    ['adapted accuracy', (summary) => percent(summary.adapted_accuracy)],
    ['frozen accuracy', (summary) => percent(summary.source_accuracy)],
  ];
  const width = 28;
  const header = ''.padEnd(width) + columns.map(({ label }) => label.padEnd(width)).join('');
  const lines = rows.map(([name, cell]) => name.padEnd(width) + columns.map(({ summary }) => cell(summary).padEnd(width)).join(''));
  return [header, ...lines].join('\n');
}
