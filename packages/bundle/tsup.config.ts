import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Both outputs share dist/, so dist is cleaned once by the build script, not by each config.
export default defineConfig([
  { ...libraryOptions, clean: false },
  // Runs the build's test run of a freshly written model in its own process.
  { entry: ['src/smoke-worker.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
