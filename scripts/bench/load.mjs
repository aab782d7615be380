// Loads tfjs and the built workspace packages from their dist folders, so that the scripts need no build step.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Imports tfjs (the copy core resolves, so that there is one engine) and the dist entry of each package. */
export async function loadPackages() {
  const requireFromCore = createRequire(path.join(ROOT, 'packages/core/package.json'));
  const tf = await import(pathToFileURL(requireFromCore.resolve('@tensorflow/tfjs')).href);
  const load = (name) => import(pathToFileURL(path.join(ROOT, `packages/${name}/dist/index.js`)).href);
  const [core, adapters, backbones, policies, proxies] = await Promise.all(
    ['core', 'adapters', 'backbones', 'policies', 'proxies'].map(load),
  );
  return { tf, core, packages: { adapters, backbones, policies, proxies } };
}

/** Returns the value at quantile `q` (0..1) of `values`, by the nearest-rank method. */
export function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}
