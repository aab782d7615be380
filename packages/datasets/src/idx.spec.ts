import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DatasetError } from './errors.js';
import { parseIdx, readIdxFile } from './idx.js';
import { encodeIdx, makeTempFolder, removeFolder } from './test-support/idx-files.js';

const DIMS = [2, 3, 4];
const DATA = Array.from({ length: 24 }, (_, i) => i * 10);

let folder: string;

beforeEach(() => {
  folder = makeTempFolder();
});

afterEach(() => {
  removeFolder(folder);
});

function writeFile(name: string, bytes: Uint8Array): string {
  const path = join(folder, name);
  writeFileSync(path, bytes);
  return path;
}

function readError(path: string): DatasetError {
  try {
    readIdxFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error(`readIdxFile(${path}) did not throw`);
}

describe('readIdxFile', () => {
  it('reads an uncompressed file', () => {
    const path = writeFile('images-idx3-ubyte', encodeIdx(DIMS, DATA));

    const array = readIdxFile(path);

    expect(array.dims).toEqual(DIMS);
    expect(Array.from(array.data)).toEqual(DATA);
  });

  it('reads a gzipped .gz file', () => {
    const path = writeFile('images-idx3-ubyte.gz', gzipSync(encodeIdx(DIMS, DATA)));

    const array = readIdxFile(path);

    expect(array.dims).toEqual(DIMS);
    expect(Array.from(array.data)).toEqual(DATA);
  });

  it('detects gzip by magic bytes without .gz', () => {
    const path = writeFile('images-idx3-ubyte', gzipSync(encodeIdx(DIMS, DATA)));

    const array = readIdxFile(path);

    expect(array.dims).toEqual(DIMS);
    expect(Array.from(array.data)).toEqual(DATA);
  });

  it('rejects truncated data with byte counts', () => {
    const bytes = encodeIdx(DIMS, DATA);
    const path = writeFile('truncated-idx3-ubyte', bytes.subarray(0, bytes.length - 5));

    const error = readError(path);

    expect(error.message).toContain(path);
    expect(error.message).toContain('is truncated');
    expect(error.message).toContain(`need ${bytes.length} bytes`);
    expect(error.message).toContain(`has ${bytes.length - 5} bytes`);
  });

  it('rejects trailing bytes with byte counts', () => {
    const bytes = encodeIdx(DIMS, DATA);
    const path = writeFile('trailing-idx3-ubyte', new Uint8Array([...bytes, 1, 2, 3]));

    const error = readError(path);

    expect(error.message).toContain(path);
    expect(error.message).toContain('has trailing bytes');
    expect(error.message).toContain(`need ${bytes.length} bytes`);
    expect(error.message).toContain(`has ${bytes.length + 3} bytes`);
  });

  it('rejects a truncated gzipped file', () => {
    const gzipped = gzipSync(encodeIdx(DIMS, DATA));
    const path = writeFile('images-idx3-ubyte.gz', gzipped.subarray(0, gzipped.length - 10));

    const error = readError(path);

    expect(error.message).toContain(path);
    expect(error.message).toContain('not a valid gzip stream');
  });

  it('rejects a .gz file that is not gzip', () => {
    const path = writeFile('images-idx3-ubyte.gz', encodeIdx(DIMS, DATA));

    const error = readError(path);

    expect(error.message).toContain(path);
    expect(error.message).toContain('not gzip-compressed');
    expect(error.message).toContain('00 00 08 03');
  });

  it('rejects an empty .gz file', () => {
    const path = writeFile('empty.gz', new Uint8Array(0));

    expect(readError(path).message).toContain('it is empty');
  });

  it('names the path of a missing file', () => {
    const path = join(folder, 'absent-idx1-ubyte');

    const error = readError(path);

    expect(error.message).toBe(`IDX file ${path} not found; check the path.`);
    expect(error.code).toBe('invalid_input');
    expect(error.exitStatus).toBe(2);
  });

  it('rejects a folder passed as a file', () => {
    expect(readError(folder).message).toContain('cannot be read');
  });
});

describe('parseIdx', () => {
  it('returns the data as a view of the buffer', () => {
    const bytes = encodeIdx([5], [9, 8, 7, 6, 5]);

    const array = parseIdx(bytes, 'labels');

    expect(array.dims).toEqual([5]);
    expect(array.data.buffer).toBe(bytes.buffer);
    expect(Array.from(array.data)).toEqual([9, 8, 7, 6, 5]);
  });

  it('reads dimensions as big-endian uint32', () => {
    const count = 70_000;
    const bytes = encodeIdx([count], new Uint8Array(count));

    expect(parseIdx(bytes, 'labels').dims).toEqual([count]);
  });

  it('rejects a wrong magic number', () => {
    const bytes = encodeIdx(DIMS, DATA);
    bytes[0] = 0x1a;

    expect(() => parseIdx(bytes, 'bad-magic')).toThrow(
      /IDX file bad-magic has an invalid magic number 1a 00 08 03/,
    );
  });

  it('rejects an unsupported element type', () => {
    const bytes = encodeIdx(DIMS, DATA);
    bytes[2] = 0x0d;

    expect(() => parseIdx(bytes, 'floats')).toThrow(
      'IDX file floats has element type float32 (0x0d); only unsigned byte (0x08) is supported.',
    );
  });

  it('rejects an unknown element type', () => {
    const bytes = encodeIdx(DIMS, DATA);
    bytes[2] = 0x42;

    expect(() => parseIdx(bytes, 'odd')).toThrow(/an unknown element type \(0x42\)/);
  });

  it('rejects zero dimensions', () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 8, 0]), 'scalar')).toThrow(/declares 0 dimensions/);
  });

  it('rejects a file shorter than the magic number', () => {
    expect(() => parseIdx(new Uint8Array([0, 0]), 'tiny')).toThrow(/too short: it has 2 bytes/);
  });

  it('rejects a truncated header', () => {
    const bytes = encodeIdx(DIMS, DATA).subarray(0, 10);

    expect(() => parseIdx(bytes, 'header')).toThrow(/needs? a 16-byte header, but the file has 10 bytes/);
  });

  it('raises DatasetError with exit status 2', () => {
    const error = (() => {
      try {
        parseIdx(new Uint8Array([1, 2, 3, 4]), 'x');
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();

    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).exitStatus).toBe(2);
    expect((error as DatasetError).code).toBe('invalid_input');
    expect((error as DatasetError).name).toBe('DatasetError');
  });
});
