import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { BundleFile } from './manifest.js';

/** sha256 and size of a file, read in 4 MiB chunks so multi-GB weights never sit in memory twice. */
export function hashFile(absPath: string, relPath: string): BundleFile {
  const h = createHash('sha256');
  const fd = openSync(absPath, 'r');
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return { path: relPath, bytes: statSync(absPath).size, sha256: h.digest('hex') };
}
