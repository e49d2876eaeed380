// The shared real-model fixtures for benchmarks: $ALKI_FIXTURES or ../shared/fixtures beside the repository.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesDir = resolve(process.env.ALKI_FIXTURES ?? join(root, '../shared/fixtures'));

/** A path under the fixtures folder, or undefined when it is not there. */
export function fixture(rel) {
  const p = join(fixturesDir, rel);
  return existsSync(p) ? p : undefined;
}
