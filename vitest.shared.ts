import { readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));

// Tests import sibling packages from their sources, so a change is tested
// without rebuilding; the CLI's tests run the built binary.
// Subpath entries (`@alki/x/node`, `@alki/x/web`) come first: an alias also matches the paths below its name.
const alias: Record<string, string> = {};
for (const dir of readdirSync(join(root, 'packages'))) {
  for (const sub of ['node', 'web']) {
    const entry = join(root, 'packages', dir, 'src', `${sub}.ts`);
    if (existsSync(entry)) alias[`@alki/${dir}/${sub}`] = entry;
  }
}
for (const dir of readdirSync(join(root, 'packages'))) {
  const src = join(root, 'packages', dir, 'src', 'index.ts');
  if (existsSync(src)) alias[`@alki/${dir}`] = src;
}

// onnxruntime-node needs real typed arrays: the forks pool keeps them intact.
export default defineConfig({
  resolve: { alias },
  test: { pool: 'forks', testTimeout: 180_000, hookTimeout: 180_000 },
});
