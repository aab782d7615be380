import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { InputError, type Backbone } from '@safe-metanet/core';

import type { NamedWeight } from './frozen-backbone.js';

// File layout, all integers and floats little-endian:
//   bytes 0-7    the signature MAGIC
//   bytes 8-11   uint32 length H of the JSON header in bytes
//   next H bytes the JSON header (BackboneWeightsHeader), UTF-8
//   the rest     the float32 values of each weight in header order, row-major, with no padding
const MAGIC = 'SMNWGT01';
const FORMAT = 'safe-metanet-backbone-weights';
const VERSION = 1;
const PREFIX_BYTES = MAGIC.length + 4;
const FLOAT32_BYTES = 4;

/** Name, shape and data type of one stored weight. */
export interface StoredWeight {
  /** Weight name, such as `layer_0/kernel`. */
  readonly name: string;
  /** Shape of the weight. */
  readonly shape: readonly number[];
  /** Data type of the stored values, always `float32` in version 1. */
  readonly dtype: 'float32';
}

/** The JSON header of a backbone weights file. */
export interface BackboneWeightsHeader {
  /** Always `safe-metanet-backbone-weights`. */
  readonly format: string;
  /** Layout version of the file. */
  readonly version: number;
  /** Config name of the backbone kind that saved the weights. */
  readonly kind: string;
  /** Shape of one input sample of that backbone. */
  readonly inputShape: readonly number[];
  /** Number of classes of that backbone. */
  readonly numClasses: number;
  /** Whether the file includes decoder weights. */
  readonly hasDecoder: boolean;
  /** The weights in the order their values follow the header. */
  readonly weights: readonly StoredWeight[];
  /** Caller data stored with the weights, such as the training config and data set. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** A backbone whose weights can be saved and loaded by name, such as MlpBackbone and CnnBackbone. */
export type SaveableBackbone = Pick<Backbone, 'kind' | 'inputShape' | 'numClasses' | 'hasDecoder'> & {
  namedWeights(): readonly NamedWeight[];
};

/**
 * Writes the backbone's weights and `metadata` to one file (JSON header, then the float32 values).
 * The data goes to a temporary file in the same folder that is then renamed over `filePath`, so a
 * reader never sees a partly written file. Creates the folder when it is missing.
 */
export function saveBackboneWeights(
  backbone: SaveableBackbone,
  filePath: string,
  metadata: Record<string, unknown> = {},
): void {
  const weights = backbone.namedWeights();
  for (const weight of weights) {
    if (weight.variable.dtype !== 'float32') {
      throw new InputError(
        `Cannot save backbone weights to ${filePath}: weight '${weight.name}' has dtype ${weight.variable.dtype}; only float32 is stored.`,
      );
    }
  }

  const header: BackboneWeightsHeader = {
    format: FORMAT,
    version: VERSION,
    kind: backbone.kind,
    inputShape: [...backbone.inputShape],
    numClasses: backbone.numClasses,
    hasDecoder: backbone.hasDecoder,
    weights: weights.map((weight) => ({ name: weight.name, shape: [...weight.variable.shape], dtype: 'float32' })),
    metadata,
  };
  const headerBytes = Buffer.from(serializeHeader(header, filePath), 'utf8');

  const dataBytes = weights.reduce((total, weight) => total + weight.variable.size * FLOAT32_BYTES, 0);
  const bytes = Buffer.alloc(PREFIX_BYTES + headerBytes.length + dataBytes);
  bytes.write(MAGIC, 0, 'ascii');
  bytes.writeUInt32LE(headerBytes.length, MAGIC.length);
  headerBytes.copy(bytes, PREFIX_BYTES);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = PREFIX_BYTES + headerBytes.length;
  for (const weight of weights) {
    for (const value of weight.variable.dataSync()) {
      view.setFloat32(offset, value, true);
      offset += FLOAT32_BYTES;
    }
  }

  writeAtomically(filePath, bytes);
}

/**
 * Loads weights saved by saveBackboneWeights into `backbone` and returns the file's header.
 * Raises an InputError naming the file when it is missing, truncated or corrupt. It raises one
 * too when the file's kind, input shape, weight names or shapes differ from the backbone's.
 * The backbone is unchanged after any error.
 */
export function loadBackboneWeights(backbone: SaveableBackbone, filePath: string): BackboneWeightsHeader {
  const weights = backbone.namedWeights();

  const { header, values } = withOpenFile(filePath, (file) => {
    const parsed = readHeader(file, filePath);
    checkCompatible(backbone, weights, parsed.header, filePath);
    return { header: parsed.header, values: readValues(file, parsed.header, parsed.dataOffset) };
  });

  const variables = new Map(weights.map((weight) => [weight.name, weight.variable]));
  header.weights.forEach((stored, index) => {
    const variable = variables.get(stored.name);
    const data = values[index];
    if (variable === undefined || data === undefined) {
      throw new Error(`Weight '${stored.name}' passed the name check but has no variable or data.`);
    }
    tf.tidy(() => {
      variable.assign(tf.tensor(data, [...stored.shape], 'float32'));
    });
  });
  return header;
}

/** Reads the header of a weights file (kind, weight names and shapes, metadata) without the values. */
export function readBackboneHeader(filePath: string): BackboneWeightsHeader {
  return withOpenFile(filePath, (file) => readHeader(file, filePath).header);
}

/** Reads the metadata stored with a weights file. */
export function readBackboneMetadata(filePath: string): Readonly<Record<string, unknown>> {
  return readBackboneHeader(filePath).metadata;
}

interface OpenFile {
  readonly descriptor: number;
  readonly size: number;
}

interface ParsedHeader {
  readonly header: BackboneWeightsHeader;
  readonly dataOffset: number;
}

function serializeHeader(header: BackboneWeightsHeader, filePath: string): string {
  try {
    return JSON.stringify(header);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError(
      `Cannot save backbone weights to ${filePath}: the metadata cannot be serialised as JSON (${reason}); pass plain JSON values.`,
      { cause: error },
    );
  }
}

function writeAtomically(filePath: string, bytes: Buffer): void {
  const directory = path.dirname(filePath);
  const temporary = path.join(directory, `.${path.basename(filePath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    mkdirSync(directory, { recursive: true });
    writeFileSync(temporary, bytes);
    renameSync(temporary, filePath);
  } catch (error) {
    rmSync(temporary, { force: true });
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot write backbone weights to ${filePath}: ${reason}.`, { cause: error });
  }
}

function withOpenFile<T>(filePath: string, read: (file: OpenFile) => T): T {
  let descriptor: number;
  try {
    descriptor = openSync(filePath, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : error instanceof Error ? error.message : String(error);
    throw new InputError(
      `Cannot read backbone weights file ${filePath}: ${reason}. Check the path, or train and save a source model first.`,
      { cause: error },
    );
  }
  try {
    return read({ descriptor, size: fstatSync(descriptor).size });
  } finally {
    closeSync(descriptor);
  }
}

function readExactly(file: OpenFile, position: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const count = readSync(file.descriptor, bytes, filled, length - filled, position + filled);
    if (count === 0) {
      break;
    }
    filled += count;
  }
  return bytes.subarray(0, filled);
}

function truncated(filePath: string, size: number, expected: number): InputError {
  return new InputError(
    `Invalid backbone weights file ${filePath}: it is truncated (${size} bytes, the header describes ${expected}). Save the weights again.`,
  );
}

function readHeader(file: OpenFile, filePath: string): ParsedHeader {
  const prefix = readExactly(file, 0, PREFIX_BYTES);
  if (prefix.length < MAGIC.length || prefix.toString('ascii', 0, MAGIC.length) !== MAGIC) {
    throw new InputError(
      `Invalid backbone weights file ${filePath}: it does not start with the signature '${MAGIC}'. Pass a file written by saveBackboneWeights.`,
    );
  }
  if (prefix.length < PREFIX_BYTES) {
    throw truncated(filePath, file.size, PREFIX_BYTES);
  }

  const headerLength = prefix.readUInt32LE(MAGIC.length);
  const dataOffset = PREFIX_BYTES + headerLength;
  if (file.size < dataOffset) {
    throw truncated(filePath, file.size, dataOffset);
  }

  let raw: unknown;
  try {
    raw = JSON.parse(readExactly(file, PREFIX_BYTES, headerLength).toString('utf8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError(`Invalid backbone weights file ${filePath}: its header is not valid JSON (${reason}). Save the weights again.`, {
      cause: error,
    });
  }
  const header = checkHeader(raw, filePath);

  const expected = dataOffset + header.weights.reduce((total, weight) => total + product(weight.shape) * FLOAT32_BYTES, 0);
  if (file.size < expected) {
    throw truncated(filePath, file.size, expected);
  }
  if (file.size > expected) {
    throw new InputError(
      `Invalid backbone weights file ${filePath}: it has ${file.size - expected} bytes after the last weight (${file.size} bytes, the header describes ${expected}). Save the weights again.`,
    );
  }
  return { header, dataOffset };
}

function checkHeader(raw: unknown, filePath: string): BackboneWeightsHeader {
  const invalid = (problem: string): InputError =>
    new InputError(`Invalid backbone weights file ${filePath}: ${problem}. Save the weights again with saveBackboneWeights.`);

  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid('its header is not a JSON object');
  }
  const header = raw as Record<string, unknown>;
  if (header['format'] !== FORMAT || header['version'] !== VERSION) {
    throw invalid(
      `its header has format ${JSON.stringify(header['format'])} version ${JSON.stringify(header['version'])}, expected '${FORMAT}' version ${VERSION}`,
    );
  }
  if (typeof header['kind'] !== 'string' || typeof header['hasDecoder'] !== 'boolean' || typeof header['numClasses'] !== 'number') {
    throw invalid("its header lacks a string 'kind', a boolean 'hasDecoder' or a number 'numClasses'");
  }
  if (!isShape(header['inputShape'])) {
    throw invalid("its header's 'inputShape' is not a list of non-negative integers");
  }
  const metadata = header['metadata'];
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid("its header's 'metadata' is not a JSON object");
  }
  const weights = header['weights'];
  if (!Array.isArray(weights) || !weights.every(isStoredWeight)) {
    throw invalid("its header's 'weights' is not a list of { name, shape, dtype: 'float32' } entries");
  }
  return raw as BackboneWeightsHeader;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((size) => Number.isInteger(size) && (size as number) >= 0);
}

function isStoredWeight(value: unknown): value is StoredWeight {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const weight = value as Record<string, unknown>;
  return typeof weight['name'] === 'string' && isShape(weight['shape']) && weight['dtype'] === 'float32';
}

function checkCompatible(
  backbone: SaveableBackbone,
  weights: readonly NamedWeight[],
  header: BackboneWeightsHeader,
  filePath: string,
): void {
  const mismatch = (difference: string): InputError =>
    new InputError(
      `Backbone weights in ${filePath} do not match this ${backbone.kind} backbone: ${difference}. ` +
        'Build the backbone with the config the weights were saved with.',
    );

  if (header.kind !== backbone.kind) {
    throw mismatch(`the file was saved from a '${header.kind}' backbone`);
  }
  if (!sameShape(header.inputShape, backbone.inputShape)) {
    throw mismatch(`the file's input shape is [${header.inputShape.join(', ')}], the backbone's [${backbone.inputShape.join(', ')}]`);
  }
  if (header.hasDecoder !== backbone.hasDecoder) {
    const decoderDifference = header.hasDecoder ? 'has decoder weights and the backbone has no decoder' : 'has no decoder weights and the backbone has a decoder';
    throw mismatch(`the file ${decoderDifference} (set the decoder option to ${String(header.hasDecoder)})`);
  }

  const stored = new Map(header.weights.map((weight) => [weight.name, weight]));
  const missing = weights.filter((weight) => !stored.has(weight.name)).map((weight) => weight.name);
  const expectedNames = new Set(weights.map((weight) => weight.name));
  const unexpected = header.weights.filter((weight) => !expectedNames.has(weight.name)).map((weight) => weight.name);
  if (missing.length > 0 || unexpected.length > 0 || stored.size !== header.weights.length) {
    const parts = [
      missing.length > 0 ? `missing weights ${missing.join(', ')}` : '',
      unexpected.length > 0 ? `unexpected weights ${unexpected.join(', ')}` : '',
      stored.size !== header.weights.length ? 'a weight name listed twice' : '',
    ].filter((part) => part.length > 0);
    throw mismatch(`the file has ${parts.join('; ')}`);
  }

  for (const weight of weights) {
    const shape = stored.get(weight.name)?.shape ?? [];
    if (!sameShape(shape, weight.variable.shape)) {
      throw mismatch(
        `weight '${weight.name}' has shape [${shape.join(', ')}] in the file and [${weight.variable.shape.join(', ')}] in the backbone`,
      );
    }
  }
}

function readValues(file: OpenFile, header: BackboneWeightsHeader, dataOffset: number): Float32Array[] {
  const values: Float32Array[] = [];
  let position = dataOffset;
  for (const weight of header.weights) {
    const size = product(weight.shape);
    const bytes = readExactly(file, position, size * FLOAT32_BYTES);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const data = new Float32Array(size);
    for (let index = 0; index < size; index++) {
      data[index] = view.getFloat32(index * FLOAT32_BYTES, true);
    }
    values.push(data);
    position += size * FLOAT32_BYTES;
  }
  return values;
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((size, axis) => size === right[axis]);
}

function product(sizes: readonly number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}
