/** One row of bench results: one corruption, severity, method and mode. */
export interface BenchRow {
  readonly dataset: string;
  readonly backbone: string;
  readonly corruption: string;
  readonly severity: number;
  /** `source` (frozen), `always_accept` (Tent-style baseline) or `safe_metanet`. */
  readonly method: BenchMethod;
  /** `episodic`, `continual`, `repeated` or `label_shift`; see BENCH_MODES. */
  readonly mode: BenchMode;
  /** Error rate on the streamed images, in [0, 1]. */
  readonly error: number;
  /** Share of batches whose update was kept, in [0, 1]; null for the frozen source. */
  readonly accept_rate: number | null;
  /** Batches streamed. */
  readonly steps: number;
  /** Wall-clock seconds of the stream. */
  readonly seconds: number;
}

/** Methods compared by bench. */
export const BENCH_METHODS = ['source', 'always_accept', 'safe_metanet'] as const;

/** One of BENCH_METHODS. */
export type BenchMethod = (typeof BENCH_METHODS)[number];

/**
 * Streaming modes of bench: `episodic` resets the adapters between corruptions, `continual` streams every
 * corruption of a severity through one runner, `repeated` streams that continual sequence several times
 * (a long stream), and `label_shift` is the continual sequence with each corruption's images sorted by
 * class, so that each batch contains one or two classes.
 */
export const BENCH_MODES = ['episodic', 'continual', 'repeated', 'label_shift'] as const;

/** One of BENCH_MODES. */
export type BenchMode = (typeof BENCH_MODES)[number];

const METHOD_TITLES: Readonly<Record<BenchMethod, string>> = {
  source: 'source',
  always_accept: 'always-accept',
  safe_metanet: 'Safe MetaNet',
};

/** One column of the error table: the source model once, then each adapted method in each mode. */
export interface BenchColumn {
  readonly title: string;
  readonly method: BenchMethod;
  readonly mode: BenchMode;
}

/** Returns the columns of the error table for `rows`, in table order. */
export function columnsOf(rows: readonly BenchRow[]): BenchColumn[] {
  const modes = BENCH_MODES.filter((mode) => rows.some((row) => row.mode === mode));
  const columns: BenchColumn[] = [{ title: 'source', method: 'source', mode: modes[0] ?? 'episodic' }];
  for (const mode of modes) {
    for (const method of ['always_accept', 'safe_metanet'] as const) {
      columns.push({ title: `${METHOD_TITLES[method]} ${mode}`, method, mode });
    }
  }
  return columns;
}

function percent(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : (value * 100).toFixed(1);
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((total, value) => total + value, 0) / values.length;
}

/** Builds the error table (percent) of one severity: a row per corruption, a column per method and mode, and the mean. */
export function errorTable(rows: readonly BenchRow[], severity: number): string[][] {
  const selected = rows.filter((row) => row.severity === severity);
  const columns = columnsOf(selected);
  const corruptions = [...new Set(selected.map((row) => row.corruption))];
  const find = (corruption: string, column: BenchColumn): number | undefined =>
    selected.find((row) => row.corruption === corruption && row.method === column.method && row.mode === column.mode)?.error;

  const table: string[][] = [[`severity ${severity}: error %`, ...columns.map((column) => column.title)]];
  for (const corruption of corruptions) {
    table.push([corruption, ...columns.map((column) => percent(find(corruption, column)))]);
  }
  const means = columns.map((column) => {
    const values = corruptions.map((corruption) => find(corruption, column)).filter((value): value is number => value !== undefined);
    return percent(mean(values));
  });
  table.push(['mean', ...means]);
  return table;
}

/** Formats a table with aligned columns for a terminal. */
export function formatPlainTable(table: readonly (readonly string[])[]): string {
  const widths = (table[0] ?? []).map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  const lines = table.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  return `${lines.join('\n')}\n`;
}

/** Formats a table as Markdown. */
export function formatMarkdownTable(table: readonly (readonly string[])[]): string {
  const [header = [], ...body] = table;
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, column) => (column === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of body) {
    lines.push(`| ${row.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
