import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Both outputs share dist/, so dist is cleaned once by the build script, not by each config.
export default defineConfig([
  { ...libraryOptions, clean: false },
  // The build's steps that run in their own process: the test run of the written model, calibration sampling.
  { entry: ['src/smoke-worker.ts', 'src/sample-worker.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
