import { defineConfig, type Options } from 'tsup';

/** How every library package builds: ESM + CJS + type declarations for Node 20. */
export const libraryOptions: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
};

export default defineConfig(libraryOptions);
