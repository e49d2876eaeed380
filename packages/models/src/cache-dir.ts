import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** $ALKI_CACHE, else ~/.cache/alki (the OS temp folder when there is no home). */
export function defaultCacheDir(): string {
  if (process.env.ALKI_CACHE) return process.env.ALKI_CACHE;
  const home = process.env.HOME ?? process.env.USERPROFILE;
  return home ? join(home, '.cache', 'alki') : join(tmpdir(), 'alki-cache');
}
