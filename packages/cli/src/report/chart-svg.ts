import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A Vega-Lite chart specification; its data must be inline (`data.values`). */
export type ChartSpec = TopLevelSpec;

/**
 * Renders a Vega-Lite chart to an SVG string in Node, without a browser or the `canvas` package.
 * Without `canvas`, Vega estimates text widths from character counts, so label layout is approximate.
 */
export async function renderChartSvg(spec: ChartSpec): Promise<string> {
  const data = 'data' in spec ? spec.data : undefined;
  if (data === undefined || data === null || !('values' in data)) {
    throw new Error(`Cannot render a report chart whose data is ${JSON.stringify(data)}: pass the rows inline as data.values.`);
  }
  const { spec: vegaSpec } = compile(spec);
  // Vega would log and draw an empty chart if a load failed, so the check above is the guard, and this loader a backstop.
  const loader = vega.loader();
  loader.load = () => Promise.reject(new Error('A report chart must carry its data inline.'));
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', loader });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
