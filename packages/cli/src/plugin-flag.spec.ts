import 'reflect-metadata';

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ContainerModule } from 'inversify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PluginError } from '@safe-metanet/core';

import { parseFlags, stringListFlag } from './flags.js';
import { commandModules, loadPluginModules, standardModules } from './plugins.js';
import { RUNNER_FLAGS } from './run-options.js';

/*
 * The --plugin flag, in process and through the built CLI. The process tests need the CLI and the
 * example plugin built: run `npx turbo run build` before running this file alone.
 */

const sourceDir = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(sourceDir, '../dist/bin.js');
const EXAMPLE_PLUGIN = path.resolve(sourceDir, '../../../examples/custom-proxy/dist/index.js');
const PROCESS_TIMEOUT_MS = 240_000;
const CLASSES = 10;

interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

let folder = '';

beforeAll(() => {
  folder = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-plugin-spec-'));
});

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

function runCli(args: readonly string[]): Promise<CliResult> {
  const env = { PATH: process.env['PATH'] ?? '', HOME: folder, LANG: 'C.UTF-8' };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: folder, env, encoding: 'utf8', timeout: PROCESS_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ status: 0, stdout, stderr });
      } else if (typeof error.code === 'number') {
        resolve({ status: error.code, stdout, stderr });
      } else {
        reject(new Error(`safe-metanet ${args.join(' ')} failed to finish: ${error.message}\n${stderr}`));
      }
    });
  });
}

function writeTemp(name: string, text: string): string {
  const file = path.join(folder, name);
  writeFileSync(file, text);
  return file;
}

function linesOf(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

describe('--plugin flag parsing', () => {
  it('repeated flag keeps every value', () => {
    const values = parseFlags('demo', ['--plugin', 'a', '--plugin', './b.js'], RUNNER_FLAGS);
    expect(stringListFlag(values, 'plugin')).toEqual(['a', './b.js']);
  });

  it('absent flag gives no plugins', async () => {
    const values = parseFlags('demo', [], RUNNER_FLAGS);
    expect(stringListFlag(values, 'plugin')).toEqual([]);
    expect(await commandModules(values, folder)).toEqual(standardModules());
  });

  it('empty value is rejected', () => {
    const values = parseFlags('demo', ['--plugin='], RUNNER_FLAGS);
    expect(() => stringListFlag(values, 'plugin')).toThrow('Invalid value for --plugin: expected a non-empty value.');
  });
});

describe('loadPluginModules', () => {
  it('takes the default export', async () => {
    const file = writeTemp('default-export.mjs', `export default { load() {}, id: 7 };\nexport const other = 1;\n`);
    const [module] = await loadPluginModules([file], folder);
    expect((module as unknown as { id: number }).id).toBe(7);
  });

  it('takes containerModule when default is absent', async () => {
    writeTemp('named-export.mjs', `export const containerModule = { load() {}, id: 8 };\n`);
    const [module] = await loadPluginModules(['./named-export.mjs'], folder);
    expect((module as unknown as { id: number }).id).toBe(8);
  });

  it('appends modules after the standard ones', async () => {
    writeTemp('appended.mjs', `export default { load() {}, id: 9 };\n`);
    const values = parseFlags('demo', ['--plugin', './appended.mjs'], RUNNER_FLAGS);
    const modules = await commandModules(values, folder);
    expect(modules.slice(0, -1)).toEqual(standardModules());
    expect((modules.at(-1) as unknown as { id: number }).id).toBe(9);
  });

  it('loads the example plugin as a ContainerModule', async () => {
    expect(existsSync(EXAMPLE_PLUGIN), `${EXAMPLE_PLUGIN} is missing; build with 'npx turbo run build'`).toBe(true);
    const [module] = await loadPluginModules([EXAMPLE_PLUGIN], folder);
    expect(module).toBeInstanceOf(ContainerModule);
  });

  it('resolves package names from the cwd', async () => {
    const packageDir = path.join(folder, 'node_modules', 'local-plugin');
    mkdirSync(packageDir, { recursive: true });
    writeFileSync(path.join(packageDir, 'package.json'), JSON.stringify({ name: 'local-plugin', type: 'module', main: 'index.js' }));
    writeFileSync(path.join(packageDir, 'index.js'), `export default { load() {}, id: 10 };\n`);
    const [module] = await loadPluginModules(['local-plugin'], folder);
    expect((module as unknown as { id: number }).id).toBe(10);
  });

  it('missing file names the module', async () => {
    const attempt = loadPluginModules(['./absent.js'], folder);
    await expect(attempt).rejects.toThrow(PluginError);
    await expect(loadPluginModules(['./absent.js'], folder)).rejects.toThrow(/^Cannot load plugin module '\.\/absent\.js' \(resolved to file:.*absent\.js\): /);
  });

  it('unknown package names the module', async () => {
    await expect(loadPluginModules(['safe-metanet-no-such-plugin'], folder)).rejects.toThrow(
      /^Cannot load plugin module 'safe-metanet-no-such-plugin' \(package name\): /,
    );
  });

  it('module without a container module lists its exports', async () => {
    writeTemp('no-module.mjs', `export default 42;\nexport const containerModule = { load: 'not a function' };\nexport function helper() {}\n`);
    await expect(loadPluginModules(['./no-module.mjs'], folder)).rejects.toThrow(
      "Plugin module './no-module.mjs' exports no container module: expected an inversify ContainerModule as the default export or as 'containerModule', found exports: containerModule, default, helper.",
    );
  });

  it('module that throws on import gives the reason', async () => {
    writeTemp('throws.mjs', `throw new Error('plugin start-up failed');\n`);
    await expect(loadPluginModules(['./throws.mjs'], folder)).rejects.toThrow(/^Cannot load plugin module '\.\/throws\.mjs' .*: plugin start-up failed\./);
  });
});

describe.concurrent('safe-metanet --plugin', () => {
  it('demo runs with the example confidence proxy', async () => {
    expect(existsSync(BIN), `${BIN} is missing; build with 'npx turbo run build'`).toBe(true);
    expect(existsSync(EXAMPLE_PLUGIN), `${EXAMPLE_PLUGIN} is missing; build with 'npx turbo run build'`).toBe(true);
    const config = writeTemp('confidence.yaml', 'proxy: confidence\n');
    const logFile = path.join(folder, 'confidence.jsonl');
    const plugin = path.relative(folder, EXAMPLE_PLUGIN);

    const result = await runCli(['demo', '--plugin', plugin, '--config', config, '--steps', '3', '--batch-size', '8', '--backend', 'cpu', '--log-file', logFile]);

    expect(result.status, result.stderr).toBe(0);
    const stepLines = linesOf(result.stderr).filter((line) => line.includes('step '));
    expect(stepLines).toHaveLength(3);
    expect(stepLines.every((line) => line.includes('| confidence '))).toBe(true);
    const records = linesOf(readFileSync(logFile, 'utf8')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toHaveLength(3);
    for (const record of records) {
      // The confidence metric, 1 − mean max probability, lies in [0, 1 − 1/classes].
      expect(record['metric_before'] as number).toBeGreaterThanOrEqual(0);
      expect(record['metric_before'] as number).toBeLessThanOrEqual(1 - 1 / CLASSES);
    }
  });

  it('unknown proxy without the plugin fails', async () => {
    const config = writeTemp('confidence-only.yaml', 'proxy: confidence\n');
    const result = await runCli(['demo', '--config', config, '--steps', '1', '--backend', 'cpu']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Unknown proxy 'confidence'/);
  });

  it('bad plugin path is one line, exit 2', async () => {
    const result = await runCli(['demo', '--plugin', './nowhere/plugin.js', '--backend', 'cpu']);
    expect(result.status).toBe(2);
    const lines = linesOf(result.stderr);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^safe-metanet: Cannot load plugin module '\.\/nowhere\/plugin\.js' \(resolved to file:.*nowhere\/plugin\.js\): /);
  });

  it('module without ContainerModule is one line, exit 2', async () => {
    writeTemp('plain.mjs', `export const answer = 42;\n`);
    const result = await runCli(['run', '--plugin', './plain.mjs', '--backend', 'cpu']);
    expect(result.status).toBe(2);
    const lines = linesOf(result.stderr);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toBe(
      "safe-metanet: Plugin module './plain.mjs' exports no container module: expected an inversify ContainerModule as the default export or as 'containerModule', found exports: answer.",
    );
  });

  it('bench accepts the flag too', async () => {
    const result = await runCli(['bench', '--plugin', './absent-bench.js']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Cannot load plugin module '\.\/absent-bench\.js'/);
  });
});
