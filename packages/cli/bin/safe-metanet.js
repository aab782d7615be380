#!/usr/bin/env node
// The installed command. It loads the compiled CLI, and it is not compiled itself, so the command link
// that pnpm creates at install time has a target before the first build.
await import('../dist/bin.js');
