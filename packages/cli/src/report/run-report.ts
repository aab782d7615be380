import { summarizeRecords, type RunRecord } from '@safe-metanet/core';

import { renderChartSvg, type ChartSpec } from './chart-svg.js';
import { formatReportPage, type ReportChart } from './html.js';

/** Inputs of the run report. */
export interface RunReportInput {
  readonly title: string;
  /** Settings of the run, shown above the charts. */
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** Proxy metric name, for the axis title. */
  readonly metric: string;
  readonly records: readonly RunRecord[];
}

const WIDTH = 900;
// Batch indices are integers, so the axis shows no fractions.
const BATCH_AXIS = { field: 'step', type: 'quantitative', title: 'batch', axis: { format: 'd', tickMinStep: 1 } } as const;
const HEIGHT = 220;

/** Builds the line chart of the proxy metric before and after each batch's update; null metrics are left out. */
export function metricChartSpec(records: readonly RunRecord[], metric: string): ChartSpec {
  const values = records.flatMap((record) => [
    ...(record.metric_before === null ? [] : [{ step: record.step, series: 'before', value: record.metric_before }]),
    ...(record.metric_after === null ? [] : [{ step: record.step, series: 'after', value: record.metric_after }]),
  ]);
  return {
    data: { values },
    mark: { type: 'line', point: true },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: BATCH_AXIS,
      y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', sort: ['before', 'after'], title: 'metric' },
    },
  };
}

/** Builds the chart of accepted and rejected batches: cumulative counts as lines over a tick per batch. */
export function decisionChartSpec(records: readonly RunRecord[]): ChartSpec {
  let accepted = 0;
  let rejected = 0;
  const counts = records.flatMap((record) => {
    if (record.action === 'accept') {
      accepted++;
    } else {
      rejected++;
    }
    return [
      { step: record.step, series: 'accepted', count: accepted },
      { step: record.step, series: 'rejected', count: rejected },
    ];
  });
  const domain = ['accepted', 'rejected'];
  const colors = { domain, range: ['#2a9d4a', '#d2452b'] };

  return {
    data: { values: counts },
    mark: { type: 'line', interpolate: 'step-after' },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: BATCH_AXIS,
      y: { field: 'count', type: 'quantitative', title: 'batches so far' },
      color: { field: 'series', type: 'nominal', scale: colors, title: 'decision' },
    },
  };
}

/** Builds the step line of the scope depth (layers in scope) at the end of each batch. */
export function scopeChartSpec(records: readonly RunRecord[]): ChartSpec {
  const values = records.map((record) => ({ step: record.step, depth: record.scope.length }));
  return {
    data: { values },
    mark: { type: 'line', interpolate: 'step-after', color: '#6a4c93' },
    width: WIDTH,
    height: 140,
    encoding: {
      x: BATCH_AXIS,
      y: { field: 'depth', type: 'quantitative', title: 'layers in scope', axis: { tickMinStep: 1 } },
    },
  };
}

/** Builds the line chart of the adapted and the frozen model's accuracy (percent) per labelled batch. */
export function accuracyChartSpec(records: readonly RunRecord[]): ChartSpec {
  const values = records.flatMap((record) =>
    record.accuracy === undefined || record.source_accuracy === undefined
      ? []
      : [
          { step: record.step, model: 'adapted', accuracy: record.accuracy * 100 },
          { step: record.step, model: 'frozen', accuracy: record.source_accuracy * 100 },
        ],
  );
  return {
    data: { values },
    mark: { type: 'line', point: true },
    width: WIDTH,
    height: HEIGHT,
    encoding: {
      x: BATCH_AXIS,
      y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (%)' },
      color: { field: 'model', type: 'nominal', sort: ['adapted', 'frozen'], title: 'model' },
    },
  };
}

function percent(value: number | undefined): string {
  return value === undefined ? 'n/a' : `${(value * 100).toFixed(2)}%`;
}

/** Builds the summary table of a run: its totals and, on labelled data, both accuracies. */
export function runSummaryTable(records: readonly RunRecord[]): string[][] {
  const summary = summarizeRecords(records);
  return [
    ['summary', 'value'],
    ['batches', String(summary.total_steps)],
    ['accepted', String(summary.accepted)],
    ['rejected', String(summary.rejected)],
    ['scope expanded', String(summary.expanded)],
    ['non-finite', String(summary.non_finite)],
    ['resets', String(summary.resets)],
    ['adapted accuracy', percent(summary.adapted_accuracy)],
    ['frozen accuracy', percent(summary.source_accuracy)],
  ];
}

/** Renders the run report: the settings, the four charts (the accuracy chart only on labelled data) and the summary table. */
export async function renderRunReport(input: RunReportInput): Promise<string> {
  const labelled = input.records.some((record) => record.accuracy !== undefined && record.source_accuracy !== undefined);
  const charts: ReportChart[] = [
    { title: `Proxy metric (${input.metric}) before and after each update`, svg: await renderChartSvg(metricChartSpec(input.records, input.metric)) },
    { title: 'Accepted and rejected batches', svg: await renderChartSvg(decisionChartSpec(input.records)) },
    { title: 'Scope depth', svg: await renderChartSvg(scopeChartSpec(input.records)) },
  ];
  if (labelled) {
    charts.push({ title: 'Adapted and frozen accuracy per batch', svg: await renderChartSvg(accuracyChartSpec(input.records)) });
  }
  return formatReportPage({ title: input.title, settings: input.settings, charts, tables: [runSummaryTable(input.records)] });
}
