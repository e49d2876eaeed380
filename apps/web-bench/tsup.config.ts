import { cpSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig } from 'tsup';

// One browser bundle (app.js, @alki/eval/web and its dependencies inside), the page, and onnxruntime-web's own
// files copied verbatim into dist/ort/ (loaded at run time from there: no CDN, works offline).
const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm'));
export default defineConfig({
  entry: { app: 'src/main.ts' },
  format: ['esm'],
  platform: 'browser',
  target: 'es2022',
  noExternal: [/.*/],
  sourcemap: true,
  clean: true,
  dts: false,
  outExtension: () => ({ js: '.js' }),
  async onSuccess() {
    cpSync('public', 'dist', { recursive: true });
    mkdirSync('dist/ort', { recursive: true });
    for (const f of ['ort.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm']) cpSync(join(ortDist, f), join('dist/ort', f));
  },
});
