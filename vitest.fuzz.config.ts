import { defineConfig, mergeConfig } from 'vitest/config';
import shared from './vitest.shared.js';

/**
 * `pnpm fuzz`: every reader of untrusted files (`packages/x/test/x.fuzz.test.ts`) with
 * ALKI_FUZZ_RUNS cases per property (100000 by default there; `pnpm test` runs the same files
 * with a small default). ALKI_FUZZ_SEED replays another seed. One file at a time: a file's
 * properties already keep a core busy, and timings (the 1 s per case limit) stay meaningful.
 */
export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: ['packages/*/test/*.fuzz.test.ts'],
      pool: 'forks',
      maxWorkers: 1,
      fileParallelism: false,
      testTimeout: 6 * 3600_000,
      hookTimeout: 600_000,
    },
  }),
);
