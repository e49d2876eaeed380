// Where every benchmark writes its JSON: bench-results/ under the folder pnpm was started from.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `result` to bench-results/<name>-<timestamp>.json, prints the path and returns it. */
export function writeBenchResult(name, result, { blankLine = true } = {}) {
  const dir = join(process.env.INIT_CWD ?? process.cwd(), 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`${blankLine ? '\n' : ''}JSON: ${file}`);
  return file;
}
