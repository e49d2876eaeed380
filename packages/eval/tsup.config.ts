import { defineConfig } from 'tsup';
import { libraryOptions } from '../../tsup.shared.js';

// Both outputs share dist/, so dist is cleaned once by the build script, not by each config.
export default defineConfig([
  { ...libraryOptions, entry: ['src/index.ts', 'src/web.ts'], clean: false },
  // Runs one bundle's speed/memory measurement in its own process.
  { entry: ['src/speed-worker.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
