import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // llama.cpp contexts are heavy and the machines have 2 cores: files run one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
