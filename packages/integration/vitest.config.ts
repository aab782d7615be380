import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    // These tests train models and spawn the CLI; a cold run on a 2-core machine takes minutes.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
