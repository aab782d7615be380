import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RunRecord } from '@safe-metanet/core';

import type { BenchRow } from '../bench-table.js';
import { benchErrorChartSpec, renderBenchReport, type BenchResults } from './bench-report.js';
import { renderChartSvg } from './chart-svg.js';
import { escapeHtml, formatReportPage } from './html.js';
import { renderRunReport } from './run-report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../dist/bin.js');
const CHROMIUM = '/usr/bin/chromium';
const PROCESS_TIMEOUT_MS = 240_000;

/** Returns the number of `<path>` elements inside the mark groups of one kind (`rect`, `line`) of an SVG or DOM string. */
function countMarks(markup: string, kind: string): number {
  const groups = markup.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'gs'));
  let count = 0;
  for (const group of groups) {
    count += (group[1] ?? '').match(/<path\b/g)?.length ?? 0;
  }
  return count;
}

/** Returns every http or https address in the markup except the SVG and XLink namespace names of xmlns attributes. */
function externalUrls(markup: string): string[] {
  const withoutNamespaces = markup.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)"/g, '');
  return withoutNamespaces.match(/https?:[^\s"'<>)]*/g) ?? [];
}

function benchRows(corruptions: readonly string[], severities: readonly number[]): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const severity of severities) {
    corruptions.forEach((corruption, index) => {
      for (const mode of ['episodic', 'continual'] as const) {
        for (const method of ['source', 'always_accept', 'safe_metanet'] as const) {
          const error = 0.1 + 0.05 * index + (method === 'safe_metanet' ? 0 : 0.02) + 0.01 * severity;
          rows.push({ dataset: 'mnist', backbone: 'mlp', corruption, severity, method, mode, error, accept_rate: null, steps: 4, seconds: 0.1 });
        }
      }
    });
  }
  return rows;
}

function runRecord(step: number, options: { action: 'accept' | 'reject'; depth: number; labelled: boolean }): RunRecord {
  const scope = Array.from({ length: options.depth }, (_, index) => `layer_${2 - index}`);
  return {
    step,
    sample_idx: step * 32,
    action: options.action,
    metric_before: 1.5 - 0.01 * step,
    metric_after: step === 2 ? null : 1.49 - 0.01 * step,
    scope,
    scope_expanded: false,
    attempts: 1,
    gradient_steps: 1,
    reject_reason: options.action === 'accept' ? null : 'no_improvement',
    duration_ms: 5,
    prediction: 'after_update',
    attempt_metrics: [],
    batch_size: 32,
    reset: false,
    ...(options.labelled ? { accuracy: 0.5 + 0.01 * step, source_accuracy: 0.5 } : {}),
  };
}

describe('benchErrorChartSpec', () => {
  it('draws one bar per corruption and column', async () => {
    const corruptions = ['gaussian_noise', 'rotate', 'contrast'];
    const svg = await renderChartSvg(benchErrorChartSpec(benchRows(corruptions, [3, 5]), 3));

    expect(svg.startsWith('<svg')).toBe(true);
    // Columns: source, then always-accept and Safe MetaNet in each of the two modes.
    expect(countMarks(svg, 'rect')).toBe(corruptions.length * 5);
    for (const corruption of corruptions) {
      expect(svg).toContain(`>${corruption}</text>`);
    }
    expect(svg).toContain('Safe MetaNet continual');
  });

  it('leaves out rows without a finite error', async () => {
    const rows = benchRows(['gaussian_noise', 'rotate'], [3]).map((row) =>
      row.corruption === 'rotate' && row.method === 'source' ? { ...row, error: Number.NaN } : row,
    );
    const svg = await renderChartSvg(benchErrorChartSpec(rows, 3));

    expect(countMarks(svg, 'rect')).toBe(2 * 5 - 1);
  });
});

describe('renderChartSvg', () => {
  it('rejects data loaded from a URL', async () => {
    const spec = { data: { url: 'https://example.com/data.json' }, mark: 'bar' as const, encoding: { x: { field: 'a', type: 'nominal' as const } } };

    await expect(renderChartSvg(spec)).rejects.toThrow(/inline/);
  });
});

describe('report HTML', () => {
  it('escapes markup in names and settings', () => {
    const html = formatReportPage({
      title: 'bench: <script>alert(1)</script> & co',
      settings: { dataset: 'data/<b>&"x"' },
      charts: [],
      tables: [[['corruption', 'error'], ['a<b', '1.0']]],
    });

    expect(html).not.toContain('<script>');
    expect(html).toContain('<title>bench: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>');
    expect(html).toContain('<dd>data/&lt;b&gt;&amp;&quot;x&quot;</dd>');
    expect(html).toContain('<th>a&lt;b</th>');
    expect(escapeHtml(`'`)).toBe('&#39;');
  });

  it('bench report is self-contained', async () => {
    const results: BenchResults = {
      dataset: 'idx <folder> & more',
      backbone: 'mlp',
      backend: 'cpu',
      images_per_corruption: 128,
      batch_size: 32,
      clean_source_accuracy: 0.9,
      seconds: 1.5,
      safe_metanet: 'adapter lora, proxy infomax, policy threshold+source_anchor, reset on_drift',
      rows: benchRows(['gaussian_noise', 'rotate'], [3, 5]),
    };
    const html = await renderBenchReport(results);

    expect(html).toContain('policy threshold+source_anchor, reset on_drift');
    expect(html.match(/<svg\b/g)?.length).toBe(2);
    expect(countMarks(html, 'rect')).toBe(2 * 2 * 5);
    expect(html.match(/<table>/g)?.length).toBe(2);
    expect(html).toContain('idx &lt;folder&gt; &amp; more');
    expect(externalUrls(html)).toEqual([]);
    expect(html).not.toMatch(/<script|<link|<img|@import/);
  });

  it('run report draws four charts on labelled data', async () => {
    const records = Array.from({ length: 6 }, (_, step) =>
      runRecord(step, { action: step % 3 === 1 ? 'reject' : 'accept', depth: 1 + Math.floor(step / 2), labelled: true }),
    );
    const html = await renderRunReport({ title: 'run <x>', settings: { corruption: 'rotate' }, metric: 'entropy', records });

    expect(html.match(/<svg\b/g)?.length).toBe(4);
    // Two lines each for the metric, the decisions and the accuracies, and one for the scope depth.
    expect(countMarks(html, 'line')).toBe(7);
    expect(html).toContain('<td class="number">2</td>');
    expect(externalUrls(html)).toEqual([]);
  });

  it('run report leaves out accuracy without labels', async () => {
    const records = Array.from({ length: 3 }, (_, step) => runRecord(step, { action: 'accept', depth: 1, labelled: false }));
    const html = await renderRunReport({ title: 'run', settings: {}, metric: 'entropy', records });

    expect(html.match(/<svg\b/g)?.length).toBe(3);
    expect(html).not.toContain('Adapted and frozen accuracy');
  });
});

/** Decoded 8-bit RGB or RGBA pixels of a PNG file. */
interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

/** Decodes a non-interlaced 8-bit RGB or RGBA PNG: concatenates the IDAT chunks, inflates them and undoes each row's filter. */
function decodePng(file: Buffer): Pixels {
  expect(file.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    const body = file.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect(body[8], 'bit depth').toBe(8);
      expect(body[12], 'interlace method').toBe(0);
      channels = body[9] === 6 ? 4 : body[9] === 2 ? 3 : 0;
      expect(channels, `colour type ${body[9]}`).toBeGreaterThan(0);
    } else if (type === 'IDAT') {
      idat.push(body);
    }
    offset += 12 + length;
  }

  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = new Uint8Array(height * stride);
  for (let row = 0; row < height; row++) {
    const filter = raw[row * (stride + 1)] as number;
    const source = raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? (data[row * stride + x - channels] as number) : 0;
      const up = row > 0 ? (data[(row - 1) * stride + x] as number) : 0;
      const upLeft = row > 0 && x >= channels ? (data[(row - 1) * stride + x - channels] as number) : 0;
      let predictor = 0;
      if (filter === 1) {
        predictor = left;
      } else if (filter === 2) {
        predictor = up;
      } else if (filter === 3) {
        predictor = Math.floor((left + up) / 2);
      } else if (filter === 4) {
        const estimate = left + up - upLeft;
        const distances = [Math.abs(estimate - left), Math.abs(estimate - up), Math.abs(estimate - upLeft)];
        predictor = distances[0]! <= distances[1]! && distances[0]! <= distances[2]! ? left : distances[1]! <= distances[2]! ? up : upLeft;
      }
      data[row * stride + x] = ((source[x] as number) + predictor) & 0xff;
    }
  }
  return { width, height, channels, data };
}

/** Returns the share of pixels that differ from white by more than a small margin in any colour channel. */
function nonWhiteShare(pixels: Pixels): number {
  let count = 0;
  const total = pixels.width * pixels.height;
  for (let index = 0; index < total; index++) {
    const base = index * pixels.channels;
    if ([0, 1, 2].some((channel) => (pixels.data[base + channel] as number) < 240)) {
      count++;
    }
  }
  return count / total;
}

function runProcess(command: string, args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const env = { PATH: process.env['PATH'] ?? '', HOME: cwd, LANG: 'C.UTF-8' };
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, encoding: 'utf8', timeout: PROCESS_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ stdout, stderr });
      } else {
        reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      }
    });
  });
}

/** Flags that keep headless Chromium offline and away from the user's profile. */
function chromiumFlags(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
  ];
}

describe('--out of bench and run', () => {
  let folder = '';
  let benchReport = '';
  let runDir = '';

  beforeAll(async () => {
    expect(existsSync(BIN), `${BIN} is missing; build the packages with 'npx turbo run build'`).toBe(true);
    folder = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-report-spec-'));
    writeFileSync(path.join(folder, 'small.yaml'), 'hidden_dim: 16\n');
    const common = ['--backend', 'cpu', '--epochs', '1', '--config', 'small.yaml', '--model-dir', 'models', '--max-samples', '128', '--batch-size', '32', '--severity', '3'];
    // Folder names with characters that HTML and file URLs must escape.
    const benchDir = path.join(folder, 'bench <&> #1');
    runDir = path.join(folder, 'run <&> #2');
    await runProcess(process.execPath, [BIN, 'bench', ...common, '--corruptions', 'gaussian_noise,rotate', '--out', benchDir], folder);
    await runProcess(process.execPath, [BIN, 'run', ...common, '--corruption', 'rotate', '--out', runDir], folder);
    benchReport = path.join(benchDir, 'report.html');
  });

  afterAll(() => {
    if (folder !== '') {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('bench writes a self-contained report', () => {
    const html = readFileSync(benchReport, 'utf8');

    expect(externalUrls(html)).toEqual([]);
    expect(countMarks(html, 'rect')).toBe(2 * 5);
    expect(html).toContain('gaussian_noise');
  });

  it('run writes records and report', () => {
    const lines = readFileSync(path.join(runDir, 'records.jsonl'), 'utf8').trim().split('\n');
    const records = lines.map((line) => JSON.parse(line) as RunRecord);
    const html = readFileSync(path.join(runDir, 'report.html'), 'utf8');

    // 128 images in batches of 32.
    expect(records.map((record) => record.step)).toEqual([0, 1, 2, 3]);
    expect(html.match(/<svg\b/g)?.length).toBe(4);
    expect(countMarks(html, 'line')).toBe(7);
    expect(html).toContain('<dd>rotate</dd>');
    expect(externalUrls(html)).toEqual([]);
  });

  describe.skipIf(!existsSync(CHROMIUM))('in headless Chromium', () => {
    const screenshotOf = async (url: string, name: string): Promise<Pixels> => {
      const screenshot = path.join(folder, name);
      const profile = mkdtempSync(path.join(folder, 'chromium-'));
      await runProcess(CHROMIUM, [...chromiumFlags(profile), `--screenshot=${screenshot}`, '--window-size=1200,1600', url], folder);
      return decodePng(readFileSync(screenshot));
    };

    it('bench report screenshot is not blank', async () => {
      const pixels = await screenshotOf(pathToFileURL(benchReport).href, 'bench.png');

      expect(pixels.width).toBe(1200);
      expect(pixels.height).toBe(1600);
      // The title, the settings, one chart and the table cover several percent of the white page.
      expect(nonWhiteShare(pixels)).toBeGreaterThan(0.03);
    });

    it('blank page screenshot is white', async () => {
      const blank = path.join(folder, 'blank.html');
      writeFileSync(blank, '<!DOCTYPE html><html><body></body></html>\n');
      const pixels = await screenshotOf(pathToFileURL(blank).href, 'blank.png');

      expect(nonWhiteShare(pixels)).toBeLessThan(0.001);
    });

    it('loaded bench DOM contains the chart', async () => {
      const profile = mkdtempSync(path.join(folder, 'chromium-'));
      const { stdout: dom } = await runProcess(CHROMIUM, [...chromiumFlags(profile), '--dump-dom', pathToFileURL(benchReport).href], folder);

      expect(dom.match(/<svg\b/g)?.length).toBe(1);
      expect(countMarks(dom, 'rect')).toBe(2 * 5);
      expect(dom).toContain('<table>');
    });

    it('loaded run DOM contains four charts', async () => {
      const profile = mkdtempSync(path.join(folder, 'chromium-'));
      const report = path.join(runDir, 'report.html');
      const { stdout: dom } = await runProcess(CHROMIUM, [...chromiumFlags(profile), '--dump-dom', pathToFileURL(report).href], folder);

      expect(dom.match(/<svg\b/g)?.length).toBe(4);
      expect(countMarks(dom, 'line')).toBe(7);
    });
  });
});
