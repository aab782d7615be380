// Splits one Safe MetaNet step of the wasm MLP and CNN batch-64 rows into its parts, to show where the time goes.
// Build the packages first, then run from the repository root:
//   node scripts/bench/profile.mjs [--filter TEXT] [--repeats N]
// The script replays the parts of an attempt with the same tensor calls as packages/core/src/safe-metanet.ts:
// snapshot, metric before, one Adam step, loss readback, metric after and restore. It also times the frozen
// layers below the scope alone, and prints the slowest kernels of one step from tf.profile.
import { parseArgs } from 'node:util';

import { loadPackages, percentile } from './load.mjs';
import { stepRows } from './rows.mjs';

const { values: options } = parseArgs({
  options: {
    filter: { type: 'string' },
    repeats: { type: 'string', default: '100' },
  },
});
const repeats = Number(options.repeats);

const { tf, core, packages } = await loadPackages();
tf.env().set('PROD', true);
await core.selectBackend('wasm', core.silentLogger);

const ROW_NAMES = ['mlp-b64-lora-last', 'mlp-b64-adapter-last', 'cnn-b64-lora-last', 'cnn-b64-adapter-last', 'mlp-b64-lora-full', 'cnn-b64-lora-full'];

/** Returns the median in ms of `repeats` timed calls of `run`, after 5 warm-up calls. */
function medianMs(run) {
  for (let index = 0; index < 5; index++) {
    run();
  }
  const times = [];
  for (let index = 0; index < repeats; index++) {
    const started = performance.now();
    run();
    times.push(performance.now() - started);
  }
  return percentile(times, 0.5);
}

/** Returns a function that runs the frozen layers with index below `firstScoped` and reads the result back. */
function lowerLayers(backbone, firstScoped, batch) {
  const weights = new Map(backbone.namedWeights().map((weight) => [weight.name, weight.variable]));
  return () =>
    tf.tidy(() => {
      let features = batch;
      for (let index = 0; index < firstScoped; index++) {
        const layer = backbone.layers[index];
        const kernel = weights.get(`${layer.name}/kernel`);
        const bias = weights.get(`${layer.name}/bias`);
        if (layer.kind === 'dense') {
          features = tf.relu(tf.add(tf.matMul(features, kernel), bias));
        } else {
          features = tf.relu(tf.add(tf.conv2d(features, kernel, layer.strides, layer.padding), bias));
          if (Math.floor(features.shape[1] / 2) >= 4) {
            features = tf.maxPool(features, 2, 2, 'valid');
          }
        }
      }
      features.dataSync();
    });
}

function profileRow(row) {
  const config = core.resolveConfig(row.settings);
  const backbone = packages.backbones.createBackbone(config);
  const runner = core.buildSafeMetaNet({
    config,
    modules: [packages.adapters.adaptersModule, packages.proxies.proxiesModule, packages.policies.policiesModule],
    backbone,
  });
  const batch = tf.randomNormal([row.batch, ...backbone.inputShape], 0, 1, 'float32', 1000);
  // The full rows expand after every rejection; one step with a threshold of 1e6 grows the scope to all layers.
  if (row.name.endsWith('-full')) {
    runner.step(batch);
  }
  const variables = runner.scopeVariables();
  const proxyValue = () => runner.proxy.compute({ input: batch, output: backbone.forward(batch, runner.adapters) });
  const measure = () => {
    const metric = tf.tidy(proxyValue);
    metric.dataSync();
    metric.dispose();
  };
  const lossOf = () => {
    const squares = variables.map((variable) => variable.square().sum());
    return proxyValue().add(tf.addN(squares).mul(config.trustRegionLambda));
  };
  const snapshot = variables.map((variable) => tf.keep(variable.clone()));

  const parts = {};
  parts['snapshot (clone variables)'] = medianMs(() => tf.dispose(variables.map((variable) => variable.clone())));
  parts['metric (forward + entropy + dataSync)'] = medianMs(measure);
  parts['Adam step (forward + backward + update)'] = medianMs(() => {
    const optimizer = tf.train.adam(config.lr);
    const loss = optimizer.minimize(lossOf, true, variables);
    loss.dispose();
    optimizer.dispose();
    variables.forEach((variable, index) => variable.assign(snapshot[index]));
  });
  parts['  of which restore (assign)'] = medianMs(() => variables.forEach((variable, index) => variable.assign(snapshot[index])));
  const readback = tf.scalar(1);
  parts['loss readback (dataSync of a scalar)'] = medianMs(() => tf.tidy(() => readback.add(0).dataSync()));
  readback.dispose();
  parts['frozen forward (no adapters, dataSync)'] = medianMs(() => tf.tidy(() => backbone.forward(batch, new Map()).logits.dataSync()));
  const firstScoped = Math.min(...runner.scope.map((name) => backbone.layers.findIndex((layer) => layer.name === name)));
  parts[`frozen layers below the scope (0..${firstScoped - 1})`] = firstScoped > 0 ? medianMs(lowerLayers(backbone, firstScoped, batch)) : 0;

  tf.dispose(snapshot);
  // Last, because a step of a full row resets the adapters, which disposes the variables timed above.
  parts['full step (runner.step)'] = medianMs(() => runner.step(batch));
  const profile = tf.profile(() => {
    runner.step(batch);
  });
  const kernels = new Map();
  return Promise.resolve(profile).then((info) => {
    for (const kernel of info.kernels) {
      const entry = kernels.get(kernel.name) ?? { ms: 0, calls: 0 };
      entry.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
      entry.calls += 1;
      kernels.set(kernel.name, entry);
    }
    batch.dispose();
    runner.dispose();
    backbone.dispose();
    const slowest = [...kernels.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8);
    return { parts, slowest };
  });
}

for (const row of stepRows({ quick: true, filter: options.filter }).filter((candidate) => ROW_NAMES.includes(candidate.name))) {
  const { parts, slowest } = await profileRow(row);
  console.log(`\n${row.name} (wasm, median of ${repeats} calls, ms)`);
  for (const [name, ms] of Object.entries(parts)) {
    console.log(`  ${name.padEnd(48)} ${ms.toFixed(2)}`);
  }
  console.log('  slowest kernels of one step (tf.profile): ' + slowest.map(([name, entry]) => `${name} ${entry.ms.toFixed(1)} ms/${entry.calls}`).join(', '));
}
