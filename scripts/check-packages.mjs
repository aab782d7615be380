// Packs every publishable package (packages/* without "private": true) with `pnpm pack` into a temporary
// folder and checks the tarball: it must contain the entry files, README.md, LICENSE and package.json,
// and no sources, tests or test helpers. Build the packages first (`pnpm build`).
// Usage: node scripts/check-packages.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packagesDir = path.join(root, 'packages');

const REQUIRED = ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts'];
const FORBIDDEN = [
  { pattern: /^src\//, reason: 'source file' },
  { pattern: /\.spec\.[cm]?[jt]s(\.map)?$|\.spec\.d\.[cm]?ts(\.map)?$/, reason: 'test file' },
  { pattern: /(^|\/)test-support\//, reason: 'test helper' },
];

function publishablePackages() {
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(packagesDir, entry.name, 'package.json')))
    .map((entry) => {
      const directory = path.join(packagesDir, entry.name);
      const manifest = JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8'));
      return { directory, manifest };
    })
    .filter(({ manifest }) => manifest.private !== true);
}

// pnpm 10 prints the tarball's path as the last line of `pnpm pack`.
function pack(directory, destination) {
  const output = execFileSync('pnpm', ['pack', '--pack-destination', destination], { cwd: directory, encoding: 'utf8' });
  const tarball = output.trim().split('\n').at(-1)?.trim() ?? '';
  return path.isAbsolute(tarball) ? tarball : path.join(destination, path.basename(tarball));
}

// Entries of an npm tarball sit under `package/`; the prefix is removed.
function tarballFiles(tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.length > 0 && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''));
}

function problemsOf(files) {
  const problems = [];
  for (const required of REQUIRED) {
    if (!files.includes(required)) {
      problems.push(`missing ${required}`);
    }
  }
  for (const file of files) {
    const forbidden = FORBIDDEN.find(({ pattern }) => pattern.test(file));
    if (forbidden !== undefined) {
      problems.push(`contains ${forbidden.reason} ${file}`);
    }
  }
  return problems;
}

const destination = mkdtempSync(path.join(os.tmpdir(), 'safe-metanet-pack-'));
let failures = 0;
try {
  for (const { directory, manifest } of publishablePackages()) {
    const tarball = pack(directory, destination);
    const files = tarballFiles(tarball);
    const problems = problemsOf(files);
    if (problems.length === 0) {
      console.log(`ok ${manifest.name}: ${files.length} files in ${path.basename(tarball)}`);
    } else {
      failures++;
      for (const problem of problems) {
        console.error(`FAIL ${manifest.name}: ${problem}`);
      }
    }
  }
} finally {
  rmSync(destination, { recursive: true, force: true });
}

if (failures > 0) {
  console.error(`${failures} package(s) failed the tarball check; fix their "files" field or build output, then run it again.`);
  process.exit(1);
}
