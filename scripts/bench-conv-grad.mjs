// Times the wasm Conv2DBackpropFilter kernel and one training step of the CNN backbone on wasm.
// Build core and backbones first, then run from the repository root:
//   node scripts/bench-conv-grad.mjs [--profile] [--steps N]
// --profile adds the 12 slowest kernels of one training step, timed with tf.profile.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const requireFromCore = createRequire(path.join(root, 'packages/core/package.json'));
const tf = await import(pathToFileURL(requireFromCore.resolve('@tensorflow/tfjs')).href);
const core = await import(pathToFileURL(path.join(root, 'packages/core/dist/index.js')).href);
const backbones = await import(pathToFileURL(path.join(root, 'packages/backbones/dist/index.js')).href);

const args = process.argv.slice(2);
const profile = args.includes('--profile');
const stepsIndex = args.indexOf('--steps');
const steps = stepsIndex >= 0 ? Number(args[stepsIndex + 1]) : 5;

tf.env().set('PROD', true);
await core.selectBackend('wasm', core.silentLogger);

/** Returns the median wall time in ms of `repeats` calls after one warm-up call. */
function medianMs(run, repeats) {
  run();
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function benchFilterGradient(xShape, filterShape) {
  const x = tf.randomNormal(xShape, 0, 1, 'float32', 1);
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, 1, 1, 'same');
  const dy = tf.randomNormal(info.outShape, 0, 1, 'float32', 2);
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape };
  const ms = medianMs(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs).dispose(), 5);
  const macs = info.batchSize * info.outHeight * info.outWidth * filterShape.reduce((a, b) => a * b, 1);
  console.log(
    `Conv2DBackpropFilter x [${xShape}] filter [${filterShape}]: ${ms.toFixed(1)} ms, ${(macs / ms / 1e6).toFixed(2)} GMAC/s`,
  );
  tf.dispose([x, dy]);
}

benchFilterGradient([64, 14, 14, 64], [3, 3, 64, 64]);
benchFilterGradient([64, 28, 28, 1], [3, 3, 1, 64]);
benchFilterGradient([64, 14, 14, 32], [3, 3, 32, 32]);
benchFilterGradient([64, 28, 28, 1], [3, 3, 1, 32]);

const BATCH = 64;

async function benchTrainingStep(hiddenDim) {
  const settings = {
    backbone: 'cnn',
    hiddenDim,
    numLayers: 3,
    inputDim: 784,
    imageSize: 28,
    imageChannels: 1,
    outputDim: 10,
    seed: 7,
  };
  const backbone = backbones.createBackbone(settings, { decoder: true });
  backbone.setTrainable(true);
  const optimizer = tf.train.adam(1e-3);
  const images = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 3);
  const labels = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32', 4), 10);
  const noAdapters = new Map();

  const step = () => {
    optimizer
      .minimize(() => {
        const { logits, reconstruction } = backbone.forward(images, noAdapters);
        return tf.add(tf.losses.softmaxCrossEntropy(labels, logits), tf.losses.meanSquaredError(images, reconstruction));
      }, true, backbone.weights())
      .dispose();
  };

  const ms = medianMs(step, steps);
  console.log(`training step, hidden_dim ${hiddenDim}, batch ${BATCH}: ${ms.toFixed(1)} ms (median of ${steps})`);

  if (profile) {
    const info = await tf.profile(step);
    const byKernel = new Map();
    for (const kernel of info.kernels) {
      byKernel.set(kernel.name, (byKernel.get(kernel.name) ?? 0) + kernel.kernelTimeMs);
    }
    const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
    console.log(`  kernels total ${total.toFixed(1)} ms`);
    for (const [name, kernelMs] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
      console.log(`  ${name.padEnd(24)} ${kernelMs.toFixed(1)} ms`);
    }
  }

  backbone.dispose();
  optimizer.dispose();
  tf.dispose([images, labels]);
}

await benchTrainingStep(64);
await benchTrainingStep(32);
