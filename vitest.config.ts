import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // A server a test starts without --data-dir (a child process inherits this) keeps its SQLite file in a folder
    // of this run, never in the user's own data directory, where an older database would be migrated or refused.
    env: { PARLANCE_DATA_DIR: join(tmpdir(), `parlance-test-data-${process.pid}`) },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // llama.cpp contexts are heavy and the machines have 2 cores: files run one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
