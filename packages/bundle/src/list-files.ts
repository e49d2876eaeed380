import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Relative paths of all files under `dir`, sorted; with `links`, of symlinks (not followed) and other entries too. */
export function listFiles(dir: string, prefix = '', links = false): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel, links));
    else if (links || e.isFile()) out.push(rel);
  }
  return out.sort();
}

/**
 * Files under a bundle folder that its alki.json does not list (alki.json itself aside); with `links`, symlinks and
 * other entries as well. Throws the filesystem's error.
 */
export function unlistedFiles(dir: string, files: { path: string }[], links = false): string[] {
  const listed = new Set(['alki.json', ...files.map((f) => f.path)]);
  return listFiles(dir, '', links).filter((rel) => !listed.has(rel));
}
