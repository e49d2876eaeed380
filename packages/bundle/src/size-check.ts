import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';
import type { Bundle } from './read.js';

/**
 * The cheap check `run` and `bench` make before loading a bundle: every file
 * alki.json lists is a regular file of the listed size (one stat each, no
 * hashing — `alki info --verify` hashes). Catches a truncated copy or a
 * missing external-data file before onnxruntime reads it.
 */
export function checkBundleSize(bundle: Bundle): void {
  const error = bundleSizeError(bundle);
  if (error) throw error;
}

/** {@link checkBundleSize}'s finding as a value: the error to report, or undefined when every file is whole (`alki info`). */
export function bundleSizeError(bundle: Bundle): AlkiError | undefined {
  const problems: string[] = [];
  for (const f of bundle.manifest.files) {
    let size: number | undefined;
    try {
      const st = lstatSync(join(bundle.dir, f.path));
      size = st.isFile() ? st.size : undefined;
      if (size === undefined) problems.push(`${f.path} is not a regular file`);
    } catch {
      problems.push(`${f.path} is missing`);
      continue;
    }
    if (size !== undefined && size !== f.bytes) problems.push(`${f.path} has ${size} bytes, alki.json says ${f.bytes}`);
  }
  if (problems.length) {
    return new AlkiError(
      'VERIFY_FAILED',
      `${bundle.dir} is incomplete or damaged: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`,
      'copy the bundle again (all of its files), or rebuild it; `alki info --verify` checks every byte',
    );
  }
  return undefined;
}
