// Builds the optional native TensorFlow backend (@tensorflow/tfjs-node) after an install.
// The workspace lists it in ignoredBuiltDependencies, so pnpm does not run its install script. That
// script downloads libtensorflow, which hangs or fails on machines without general internet access.
// This script runs it once, with a time limit, and leaves the wasm backend in charge when it fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const timeoutMs = Number(process.env.SAFE_METANET_TFJS_NODE_TIMEOUT_MS ?? 60_000);

if (process.env.SAFE_METANET_SKIP_TFJS_NODE === '1') {
  process.exit(0);
}

const require = createRequire(path.resolve('packages/core/package.json'));
let packageDir;
try {
  packageDir = path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
} catch {
  // The optional dependency was not installed (an unsupported platform, or --no-optional).
  process.exit(0);
}

const addon = path.join(packageDir, 'lib', 'napi-v8', 'tfjs_binding.node');
if (existsSync(addon)) {
  process.exit(0);
}

const result = spawnSync(process.execPath, [path.join(packageDir, 'scripts', 'install.js')], {
  cwd: packageDir,
  stdio: 'ignore',
  timeout: timeoutMs,
});
if (result.status === 0 && existsSync(addon)) {
  console.log('safe-metanet: built the native tensorflow backend (@tensorflow/tfjs-node).');
} else {
  console.log(
    'safe-metanet: the native tensorflow backend (@tensorflow/tfjs-node) could not be built, ' +
      'because its install script needs to download libtensorflow; the wasm backend will be used.',
  );
}
