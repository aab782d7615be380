import { columnsOf, errorTable, type BenchRow } from '../bench-table.js';
import { renderChartSvg, type ChartSpec } from './chart-svg.js';
import { formatReportPage, type ReportChart } from './html.js';

/** Bench results: the contents of results.json and the input of the bench report. */
export interface BenchResults {
  readonly dataset: string;
  readonly backbone: string;
  readonly backend: string;
  readonly images_per_corruption: number;
  readonly batch_size: number;
  /** Source model's accuracy on the clean test images, in [0, 1]. */
  readonly clean_source_accuracy: number;
  /** Wall-clock seconds of the streams, without loading data and the source model. */
  readonly seconds: number;
  /** Settings of the Safe MetaNet column, in one line. */
  readonly safe_metanet: string;
  readonly rows: readonly BenchRow[];
}

/**
 * Builds the grouped bar chart of one severity: a group per corruption and a bar per column of the
 * error table (the source model, then each adapted method in each mode), so it has corruptions × columns bars.
 */
export function benchErrorChartSpec(rows: readonly BenchRow[], severity: number): ChartSpec {
  const selected = rows.filter((row) => row.severity === severity);
  const columns = columnsOf(selected);
  const values = columns.flatMap((column) =>
    selected
      .filter((row) => row.method === column.method && row.mode === column.mode && Number.isFinite(row.error))
      .map((row) => ({ corruption: row.corruption, column: column.title, error: row.error * 100 })),
  );
  const corruptions = [...new Set(selected.map((row) => row.corruption))];
  const titles = columns.map((column) => column.title);

  return {
    data: { values },
    mark: 'bar',
    width: { step: 12 },
    height: 260,
    encoding: {
      x: { field: 'corruption', type: 'nominal', sort: corruptions, title: 'corruption', axis: { labelAngle: -30 } },
      xOffset: { field: 'column', type: 'nominal', sort: titles },
      y: { field: 'error', type: 'quantitative', title: 'error (%)' },
      color: { field: 'column', type: 'nominal', sort: titles, title: 'method and mode', legend: { labelLimit: 400 } },
      tooltip: [{ field: 'corruption' }, { field: 'column' }, { field: 'error', format: '.1f' }],
    },
  };
}

/** Renders the bench report: the settings, a bar chart and the error table per severity. */
export async function renderBenchReport(results: BenchResults): Promise<string> {
  const severities = [...new Set(results.rows.map((row) => row.severity))];
  const charts: ReportChart[] = [];
  for (const severity of severities) {
    charts.push({ title: `Error per corruption, severity ${severity}`, svg: await renderChartSvg(benchErrorChartSpec(results.rows, severity)) });
  }

  return formatReportPage({
    title: `Safe MetaNet bench: ${results.dataset}, ${results.backbone}`,
    settings: {
      dataset: results.dataset,
      backbone: results.backbone,
      backend: results.backend,
      'images per corruption': results.images_per_corruption,
      'batch size': results.batch_size,
      'clean source accuracy': `${(results.clean_source_accuracy * 100).toFixed(2)}%`,
      'seconds of the streams': results.seconds.toFixed(1),
      'Safe MetaNet': results.safe_metanet,
    },
    charts,
    tables: severities.map((severity) => errorTable(results.rows, severity)),
  });
}
