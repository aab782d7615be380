import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

import { DatasetError } from './errors.js';

/** An n-dimensional array read from an IDX file. */
export interface IdxArray {
  /** Size of each dimension, outermost first (for MNIST images: count, rows, columns). */
  readonly dims: number[];
  /** Elements in row-major order; a view into the bytes the file was parsed from. */
  readonly data: Uint8Array;
}

/** IDX element type codes (third byte of the magic number), from the MNIST database page. */
const IDX_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x08, 'unsigned byte'],
  [0x09, 'signed byte'],
  [0x0b, 'int16'],
  [0x0c, 'int32'],
  [0x0d, 'float32'],
  [0x0e, 'float64'],
]);

const IDX_UNSIGNED_BYTE = 0x08;
const GZIP_MAGIC = [0x1f, 0x8b] as const;

/**
 * Reads and parses an IDX file, gunzipping it first when its first two bytes are the gzip magic
 * number (1f 8b), whatever its extension.
 *
 * @throws DatasetError when the file is missing or unreadable, named `.gz` but not gzip, a
 *   truncated gzip stream, or not a valid unsigned-byte IDX file.
 */
export function readIdxFile(path: string): IdxArray {
  return parseIdx(readIdxBytes(path), path);
}

/**
 * Reads a file and returns its IDX content: gunzipped when it starts with the gzip magic
 * number, as stored otherwise.
 *
 * @throws DatasetError when the file is missing or unreadable, named `.gz` but not gzip, or a
 *   corrupt or truncated gzip stream.
 */
export function readIdxBytes(path: string): Uint8Array {
  const bytes = readFileBytes(path);

  if (bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    return gunzipFile(bytes, path);
  }

  if (path.toLowerCase().endsWith('.gz')) {
    const start = bytes.length === 0 ? 'it is empty' : `it starts with ${hexBytes(bytes.subarray(0, 4))}`;
    throw new DatasetError(
      `IDX file ${path} has the .gz extension but is not gzip-compressed (${start}, and gzip ` +
        'starts with 1f 8b); recompress it with gzip or remove the .gz extension.',
    );
  }

  return bytes;
}

/**
 * Parses the bytes of an uncompressed IDX file: a 4-byte magic number (0x00 0x00, the element
 * type, the number of dimensions), one big-endian uint32 per dimension, then the elements.
 *
 * Only the unsigned byte type (0x08) is supported, which is the type of every image and label
 * file of MNIST, Fashion-MNIST, KMNIST and EMNIST.
 *
 * @param source - file name or other description of the bytes, used in error messages.
 * @throws DatasetError on an invalid magic number, an unsupported element type, a truncated
 *   header, or a data length that differs from the product of the dimensions.
 */
export function parseIdx(buffer: Uint8Array, source: string): IdxArray {
  if (buffer.length < 4) {
    throw new DatasetError(
      `IDX file ${source} is too short: it has ${buffer.length} bytes, but the magic number ` +
        'alone takes 4; the file is truncated or not an IDX file.',
    );
  }

  const type = buffer[2] as number;
  const rank = buffer[3] as number;
  if (buffer[0] !== 0 || buffer[1] !== 0) {
    throw new DatasetError(
      `IDX file ${source} has an invalid magic number ${hexBytes(buffer.subarray(0, 4))}: an ` +
        'IDX file starts with two zero bytes, the element type and the number of dimensions.',
    );
  }

  if (type !== IDX_UNSIGNED_BYTE) {
    const typeName = IDX_TYPE_NAMES.get(type);
    const described = typeName === undefined ? 'an unknown element type' : `element type ${typeName}`;
    throw new DatasetError(
      `IDX file ${source} has ${described} (0x${hex(type)}); only unsigned byte (0x08) is ` +
        'supported.',
    );
  }

  if (rank === 0) {
    throw new DatasetError(
      `IDX file ${source} declares 0 dimensions in its magic number; at least 1 is required.`,
    );
  }

  const headerLength = 4 + 4 * rank;
  if (buffer.length < headerLength) {
    throw new DatasetError(
      `IDX file ${source} is truncated: its ${rank} dimensions need a ${headerLength}-byte ` +
        `header, but the file has ${buffer.length} bytes.`,
    );
  }

  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const dims: number[] = [];
  for (let axis = 0; axis < rank; axis++) {
    dims.push(view.getUint32(4 + 4 * axis, false));
  }

  const expectedDataLength = dims.reduce((product, size) => product * size, 1);
  const actualDataLength = buffer.length - headerLength;
  if (actualDataLength !== expectedDataLength) {
    const problem = actualDataLength < expectedDataLength ? 'is truncated' : 'has trailing bytes';
    throw new DatasetError(
      `IDX file ${source} ${problem}: dimensions ${dims.join(' × ')} need ` +
        `${headerLength + expectedDataLength} bytes (${headerLength}-byte header and ` +
        `${expectedDataLength} data bytes), but the file has ${buffer.length} bytes.`,
    );
  }

  return { dims, data: buffer.subarray(headerLength) };
}

function readFileBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DatasetError(`IDX file ${path} not found; check the path.`, { cause: error });
    }
    throw new DatasetError(
      `IDX file ${path} cannot be read (${(error as Error).message}); check that it is a ` +
        'readable file.',
      { cause: error },
    );
  }
}

function gunzipFile(bytes: Uint8Array, path: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw new DatasetError(
      `IDX file ${path} is not a valid gzip stream (${(error as Error).message}); the file is ` +
        'truncated or corrupt, so download it again.',
      { cause: error },
    );
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, hex).join(' ');
}
