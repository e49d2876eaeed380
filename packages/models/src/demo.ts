import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/index.js and src/demo.ts both sit one level below the package, beside demo/.
const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', 'demo');

/**
 * The model `alki build demo` builds, shipped inside @alki/models so that it works offline from an npm install:
 * llama2.c's stories260K (a real 260K-parameter Llama trained on TinyStories; MIT, Andrej Karpathy) and the first
 * 150 TinyStories validation stories to measure it on (CDLA-Sharing-1.0; Eldan & Li 2023). Their licenses and
 * provenance are in demo/*\/README.md and LICENSE.
 */
export const DEMO = {
  id: 'stories260K',
  modelDir: join(root, 'stories260K'),
  textPath: join(root, 'tinystories', 'tinystories-valid-150.txt'),
  /** The prompt of llama2.c's own sample, continued by `alki build demo`. */
  prompt: 'Once upon a time',
} as const;

/** Whether the embedded demo files are present (a package trimmed of them cannot build the demo). */
export function hasDemo(): boolean {
  return existsSync(join(DEMO.modelDir, 'model.safetensors')) && existsSync(DEMO.textPath);
}
