import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    // Runs one bundle's speed/memory measurement in its own process.
    entry: ['src/speed-worker.ts'],
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
  },
]);
