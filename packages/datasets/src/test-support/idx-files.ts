import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Encodes an unsigned-byte IDX file: magic number 00 00 08 <rank>, big-endian dims, data. */
export function encodeIdx(dims: readonly number[], data: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((size, axis) => view.setUint32(4 + 4 * axis, size, false));

  const bytes = new Uint8Array(header.length + data.length);
  bytes.set(header);
  bytes.set(Uint8Array.from(data), header.length);
  return bytes;
}

/** Creates an empty temporary folder and returns its path. */
export function makeTempFolder(): string {
  return mkdtempSync(join(tmpdir(), 'safe-metanet-datasets-'));
}

/** Removes a folder made by {@link makeTempFolder}. */
export function removeFolder(folder: string): void {
  rmSync(folder, { recursive: true, force: true });
}

/** Images (rows × columns, one byte per pixel, stored order) and labels of one part. */
export interface IdxPart {
  readonly rows: number;
  readonly columns: number;
  readonly images: readonly number[];
  readonly labels: readonly number[];
}

/** Writes the four files of the MNIST layout, with an optional EMNIST prefix and gzip. */
export function writeIdxFolder(
  folder: string,
  parts: { readonly train: IdxPart; readonly test: IdxPart },
  options: { readonly prefix?: string; readonly gzip?: boolean } = {},
): void {
  const prefix = options.prefix ?? '';
  const suffix = options.gzip === true ? '.gz' : '';
  const files: [string, Uint8Array][] = [];

  for (const [part, stem] of [
    [parts.train, 'train'],
    [parts.test, 't10k'],
  ] as const) {
    const count = part.labels.length;
    files.push([`${stem}-images-idx3-ubyte`, encodeIdx([count, part.rows, part.columns], part.images)]);
    files.push([`${stem}-labels-idx1-ubyte`, encodeIdx([count], part.labels)]);
  }

  for (const [name, bytes] of files) {
    const content = options.gzip === true ? gzipSync(bytes) : bytes;
    writeFileSync(join(folder, `${prefix}${name}${suffix}`), content);
  }
}

/** Builds a small labelled part whose pixel bytes are `(seed + 7 i) mod 256`. */
export function syntheticPart(count: number, rows: number, columns: number, seed: number, numClasses = 3): IdxPart {
  const images = Array.from({ length: count * rows * columns }, (_, i) => (seed + 7 * i) % 256);
  const labels = Array.from({ length: count }, (_, i) => (seed + i) % numClasses);
  return { rows, columns, images, labels };
}
