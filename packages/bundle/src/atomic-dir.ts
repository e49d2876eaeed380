import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { AlkiError, fsError } from '@alki/core';

const live = new Set<string>();

/** Folders being written right now; a Ctrl-C handler removes them with {@link removePartialDirs}. */
export function partialDirs(): string[] {
  return [...live];
}

/** Removes every folder still being written (safe to call from a signal handler). */
export function removePartialDirs(): void {
  for (const d of live) rmSync(d, { recursive: true, force: true });
  live.clear();
}

/**
 * Writes a folder atomically: `fill` writes into a temporary sibling
 * `.<name>.partial-<pid>`, which is renamed to `dest` only when complete.
 * On any error the temporary folder is removed and `dest` is left as it was.
 */
export async function writeDirAtomically<T>(dest: string, overwrite: boolean, fill: (tmp: string) => Promise<T>): Promise<T> {
  const target = resolve(dest);
  const parent = dirname(target);
  if (existsSync(target) && !overwrite) {
    throw new AlkiError('BAD_OPTION', `${dest} already exists`, 'pass --force to replace it, or choose another --out folder');
  }
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw fsError(e, `creating ${parent}`);
  }
  sweepStalePartials(parent, basename(target));
  const tmp = join(parent, `.${basename(target)}.partial-${process.pid}-${Date.now().toString(36)}`);
  live.add(tmp);
  try {
    mkdirSync(tmp);
    const result = await fill(tmp);
    if (existsSync(target)) {
      // Move the old bundle aside first so that a failure never leaves neither.
      const old = `${tmp}.old`;
      renameSync(target, old);
      renameSync(tmp, target);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, target);
    }
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw fsError(e, `writing ${dest}`);
  } finally {
    live.delete(tmp);
  }
}

/** Removes partial folders of `name` left by processes that no longer run (killed with SIGKILL, power loss). */
function sweepStalePartials(parent: string, name: string): void {
  const prefix = `.${name}.partial-`;
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) rmSync(join(parent, entry), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
