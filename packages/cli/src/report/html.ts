const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);
}

/** One chart of a report: a heading and its rendered SVG. */
export interface ReportChart {
  readonly title: string;
  /** SVG markup from renderChartSvg, inserted as is. */
  readonly svg: string;
}

/** Contents of a report page; every string but the SVG is plain text and is escaped. */
export interface ReportPage {
  readonly title: string;
  /** Settings of the run or bench, shown as name and value pairs. */
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly charts: readonly ReportChart[];
  /** Tables whose first row is the header. */
  readonly tables: readonly (readonly (readonly string[])[])[];
}

// Inline only, so that the file opens offline and loads nothing.
const STYLE = `body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
dl.settings { display: grid; grid-template-columns: repeat(3, max-content minmax(8em, auto)); gap: 0.1em 1em; font-size: 0.9em; }
dl.settings dt { font-weight: bold; }
dl.settings dd { margin: 0; }
figure { margin: 1.5em 0; }`;

/** Formats a table as HTML; cells of the body other than the first column are aligned as numbers. */
export function formatHtmlTable(table: readonly (readonly string[])[]): string {
  const [header = [], ...body] = table;
  const headerRow = `<tr>${header.map((cell) => `<th>${escapeHtml(cell)}</th>`).join('')}</tr>`;
  const bodyRows = body.map((row) => {
    const cells = row.map((cell, column) => (column === 0 ? `<th>${escapeHtml(cell)}</th>` : `<td class="number">${escapeHtml(cell)}</td>`));
    return `<tr>${cells.join('')}</tr>`;
  });
  return `<table>\n<thead>${headerRow}</thead>\n<tbody>\n${bodyRows.join('\n')}\n</tbody>\n</table>`;
}

/** Builds a self-contained HTML page: the title, the settings, the charts as inline SVG and the tables. */
export function formatReportPage(page: ReportPage): string {
  const settings = Object.entries(page.settings)
    .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(String(value))}</dd>`)
    .join('\n');
  const charts = page.charts.map((chart) => `<figure>\n<figcaption><h2>${escapeHtml(chart.title)}</h2></figcaption>\n${chart.svg}\n</figure>`);
  const tables = page.tables.map((table) => formatHtmlTable(table));

  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(page.title)}</title>`,
    `<style>\n${STYLE}\n</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(page.title)}</h1>`,
    `<dl class="settings">\n${settings}\n</dl>`,
    ...charts,
    ...tables,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
