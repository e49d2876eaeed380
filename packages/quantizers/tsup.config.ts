import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Both outputs share dist/, so dist is cleaned once by the build script, not by each config.
export default defineConfig([
  { ...libraryOptions, clean: false },
  // RTN's rounding threads (rtn-pool.ts).
  { entry: ['src/rtn-worker.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
