import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { ContainerModule } from 'inversify';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule } from '@safe-metanet/backbones';
import { PluginError } from '@safe-metanet/core';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

import { stringListFlag, type FlagValues } from './flags.js';

/** Returns the container modules of the standard plugin packages. */
export function standardModules(): ContainerModule[] {
  return [backbonesModule, adaptersModule, proxiesModule, policiesModule];
}

/** Returns the standard modules followed by the modules of every `--plugin` flag, in the order given. */
export async function commandModules(values: FlagValues, cwd = process.cwd()): Promise<ContainerModule[]> {
  const plugins = await loadPluginModules(stringListFlag(values, 'plugin'), cwd);
  return [...standardModules(), ...plugins];
}

/**
 * Imports each plugin module and returns its ContainerModule: the default export, or else the export
 * `containerModule`. A specifier that starts with `.` or `/` (or is absolute) is a file path, resolved against
 * `cwd`. Any other specifier is a package name, resolved from `cwd` first and then from this CLI's own
 * dependencies. A module that cannot be imported or exports no ContainerModule raises a PluginError naming it.
 */
export async function loadPluginModules(specifiers: readonly string[], cwd = process.cwd()): Promise<ContainerModule[]> {
  const modules: ContainerModule[] = [];
  for (const specifier of specifiers) {
    modules.push(await loadPluginModule(specifier, cwd));
  }
  return modules;
}

async function loadPluginModule(specifier: string, cwd: string): Promise<ContainerModule> {
  const target = importTarget(specifier, cwd);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(target)) as Record<string, unknown>;
  } catch (error) {
    throw new PluginError(
      `Cannot load plugin module '${specifier}' (${describeTarget(target)}): ${firstLine(error)}. Pass a package name or the path of its built JavaScript file.`,
      { cause: error },
    );
  }

  const candidate = [exports['default'], exports['containerModule']].find(isContainerModule);
  if (candidate === undefined) {
    const names = Object.keys(exports).sort();
    const found = names.length === 0 ? 'none' : names.join(', ');
    throw new PluginError(
      `Plugin module '${specifier}' exports no container module: expected an inversify ContainerModule as the default export or as 'containerModule', found exports: ${found}.`,
    );
  }
  return candidate;
}

function importTarget(specifier: string, cwd: string): string {
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
    return pathToFileURL(path.resolve(cwd, specifier)).href;
  }
  try {
    // A user's plugin package is installed beside their project, not beside the CLI, so look there first.
    return pathToFileURL(createRequire(path.join(cwd, 'package.json')).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}

function describeTarget(target: string): string {
  return target.startsWith('file:') ? `resolved to ${target}` : 'package name';
}

// A ContainerModule from another copy of inversify fails instanceof, so the shape of one counts too.
function isContainerModule(value: unknown): value is ContainerModule {
  if (value instanceof ContainerModule) {
    return true;
  }
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { load?: unknown }).load === 'function' &&
    'id' in value
  );
}

// Node's messages for a missing module add a require stack on later lines; the first line names the problem.
function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/[.\s]+$/, '');
}
