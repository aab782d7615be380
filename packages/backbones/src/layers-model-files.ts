import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { InputError } from '@safe-metanet/core';

const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

/**
 * Creates a tfjs IOHandler that reads and writes a Layers model in a folder with node:fs, in the layout
 * `tf.LayersModel.save('file://DIR')` of `@tensorflow/tfjs-node` writes: `DIR/model.json` (topology and
 * weights manifest) and `DIR/weights.bin`. `location` is the folder or the path of its `model.json`.
 *
 * `load()` reads the weight files that the manifest lists, relative to the folder of `model.json`, and joins
 * them into one ArrayBuffer. A missing or unreadable file, invalid JSON, a manifest without topology or a
 * weight path outside the folder raise an InputError naming the file.
 */
export function layersModelFiles(location: string): tf.io.IOHandler {
  const modelPath = modelJsonPath(location);
  const directory = path.dirname(modelPath);

  return {
    load: async () => loadArtifacts(modelPath, directory),
    save: async (artifacts) => saveArtifacts(artifacts, modelPath, directory),
  };
}

/** Returns the path of `model.json` for a folder or a path that already names the JSON file. */
export function modelJsonPath(location: string): string {
  const resolved = path.resolve(location);
  if (resolved.endsWith('.json')) {
    return resolved;
  }
  try {
    if (statSync(resolved).isDirectory()) {
      return path.join(resolved, MODEL_FILE);
    }
  } catch {
    // A path that does not exist yet is a folder to save into; load reports the missing model.json.
    return path.join(resolved, MODEL_FILE);
  }
  return resolved;
}

async function loadArtifacts(modelPath: string, directory: string): Promise<tf.io.ModelArtifacts> {
  const modelJson = readModelJson(modelPath);
  return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs = manifest.flatMap((group) => group.weights);
    const buffers = manifest.flatMap((group) => group.paths.map((weightPath) => readWeightFile(modelPath, directory, weightPath)));
    return [specs, tf.io.concatenateArrayBuffers(buffers)];
  });
}

function readModelJson(modelPath: string): tf.io.ModelJSON {
  let text: string;
  try {
    text = readFileSync(modelPath, 'utf8');
  } catch (error) {
    throw new InputError(`Cannot read the model file ${modelPath}: ${reasonOf(error)}. Pass the folder that tf.LayersModel.save wrote, or its model.json.`, {
      cause: error,
    });
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(`Invalid model file ${modelPath}: it is not valid JSON (${reasonOf(error)}).`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || !('modelTopology' in parsed) || typeof parsed.modelTopology !== 'object') {
    throw new InputError(`Invalid model file ${modelPath}: it has no 'modelTopology' object, so it is not a saved tfjs Layers model.`);
  }
  const manifest = 'weightsManifest' in parsed ? parsed.weightsManifest : undefined;
  if (manifest !== undefined && !isManifest(manifest)) {
    throw new InputError(`Invalid model file ${modelPath}: 'weightsManifest' must be a list of groups with 'paths' and 'weights' lists.`);
  }
  return parsed as tf.io.ModelJSON;
}

function isManifest(value: unknown): value is tf.io.WeightsManifestConfig {
  return (
    Array.isArray(value) &&
    value.every(
      (group: unknown) =>
        typeof group === 'object' &&
        group !== null &&
        'paths' in group &&
        Array.isArray(group.paths) &&
        group.paths.every((item: unknown) => typeof item === 'string') &&
        'weights' in group &&
        Array.isArray(group.weights),
    )
  );
}

function readWeightFile(modelPath: string, directory: string, weightPath: string): ArrayBuffer {
  const filePath = path.resolve(directory, weightPath);
  const relative = path.relative(directory, filePath);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new InputError(`Invalid model file ${modelPath}: weight path '${weightPath}' leaves the model's folder; list files beside model.json.`);
  }
  try {
    const bytes = readFileSync(filePath);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  } catch (error) {
    throw new InputError(`Cannot read the weight file ${filePath} listed in ${modelPath}: ${reasonOf(error)}.`, { cause: error });
  }
}

function saveArtifacts(artifacts: tf.io.ModelArtifacts, modelPath: string, directory: string): tf.io.SaveResult {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new InputError(`Cannot save to ${modelPath}: the model topology is binary (a graph model); only Layers models are saved as JSON.`);
  }
  const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.concatenateArrayBuffers(toBuffers(artifacts.weightData));

  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as object,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
  };
  if (artifacts.trainingConfig !== undefined) {
    modelJson.trainingConfig = artifacts.trainingConfig;
  }
  if (artifacts.userDefinedMetadata !== undefined) {
    modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
  }

  mkdirSync(directory, { recursive: true });
  writeFileSync(path.join(directory, WEIGHTS_FILE), new Uint8Array(weightData));
  writeFileSync(modelPath, JSON.stringify(modelJson));
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

// tfjs 4.22 types weight data as one ArrayBuffer or a list of them (for models above 2 GB).
function toBuffers(weightData: tf.io.WeightData): ArrayBuffer[] {
  return Array.isArray(weightData) ? weightData : [weightData];
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
