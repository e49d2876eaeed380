import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { AlkiError, fsError, isProcessRunning, onInterrupt, runInterruptCleanups } from '@alki/core';
import { makeDirs } from '@alki/core/node';
import { validateManifest } from './manifest.js';
import { unlistedFiles } from './list-files.js';

const live = new Set<string>();

/** Folders being written right now (removed by {@link removePartialDirs} or an interrupt). */
export function partialDirs(): string[] {
  return [...live];
}

/** Removes every temporary folder and stops every child process still registered (safe in a signal handler). */
export function removePartialDirs(): void {
  runInterruptCleanups();
}

/**
 * A temporary folder beside `dest`, named `.<name>.partial-<pid>-<time>[-<tag>]`
 * so that the next build of the same name removes it if this process dies
 * before it can (see {@link sweepStalePartials}). Registered for removal on
 * Ctrl-C / SIGTERM until `remove` is called.
 */
export function tempSibling(dest: string, tag = ''): { dir: string; remove: () => void } {
  const target = resolve(dest);
  const parent = dirname(target);
  makeDirs(parent);
  sweepStalePartials(parent, basename(target));
  const dir = join(parent, `.${basename(target)}.partial-${process.pid}-${Date.now().toString(36)}${tag ? `-${tag}` : ''}`);
  try {
    mkdirSync(dir);
  } catch (e) {
    throw fsError(e, `creating ${dir}`);
  }
  live.add(dir);
  const unregister = onInterrupt(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      live.delete(dir);
      unregister();
    },
  };
}

/** Paths the caller must never lose: a replaced bundle may not be, or contain, any of them. */
export interface ReplaceOptions {
  /** e.g. the source model folder; the current folder is always protected. */
  protect?: string[];
}

/** Whether `inner` is `outer` or lies inside it. */
function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Checks that writing `dest` can lose nothing the caller protects: a non-empty
 * path that is not the current folder or a protected folder, nor one of their
 * parents (the filesystem root included).
 */
export function assertOutsideProtected(dest: string, o: ReplaceOptions = {}): void {
  if (typeof dest !== 'string' || dest.trim() === '') {
    throw new AlkiError('BAD_OPTION', 'the output folder is empty', 'pass --out with a folder name such as dist/my-bundle');
  }
  const target = resolve(dest);
  const cwd = resolve(process.cwd());
  for (const p of [cwd, ...(o.protect ?? []).map((x) => resolve(x))]) {
    if (within(p, target)) {
      const what = p === cwd ? 'the current folder' : p;
      throw new AlkiError(
        'BAD_OPTION',
        `--out ${dest} is ${p === target ? what : `a parent of ${what}`}: writing there would replace it`,
        'choose a new folder for the output, such as dist/<name>',
      );
    }
  }
}

/**
 * Checks that `dest` may be written ({@link assertOutsideProtected}); when it
 * exists, `overwrite` must be set and it must be an Alki bundle (a folder whose
 * alki.json validates) — `--force` replaces bundles, nothing else.
 */
export function assertWritableBundleDir(dest: string, overwrite: boolean, o: ReplaceOptions = {}): void {
  assertOutsideProtected(dest, o);
  const target = resolve(dest);
  if (!existsSync(target) && !isSymlink(target)) return;
  if (!overwrite)
    throw new AlkiError(
      'BAD_OPTION',
      `${dest} already exists`,
      'pass --force to replace it (only an Alki bundle can be replaced), or choose another --out folder',
    );
  if (isSymlink(target) || !statSync(target).isDirectory() || !existsSync(join(target, 'alki.json'))) {
    throw new AlkiError(
      'BAD_OPTION',
      `${dest} exists and is not an Alki bundle, so --force will not replace it`,
      'choose another --out folder, or remove it yourself if you really mean to',
    );
  }
  let files: { path: string }[];
  try {
    files = validateManifest(JSON.parse(readFileSync(join(target, 'alki.json'), 'utf8')), dest).files;
  } catch {
    throw new AlkiError(
      'BAD_OPTION',
      `${dest} has an alki.json that Alki cannot read, so --force will not replace it`,
      'choose another --out folder, or remove it yourself if you really mean to',
    );
  }
  // Files someone added to the bundle (notes, data) would go with it: --force replaces what Alki wrote, nothing more.
  let added: string[];
  try {
    // Symlinks count: whatever someone put there goes with the folder.
    added = unlistedFiles(target, files, true);
  } catch (e) {
    throw fsError(e, `reading ${dest} before replacing it`);
  }
  if (added.length) {
    throw new AlkiError(
      'BAD_OPTION',
      `${dest} is an Alki bundle that also holds files it did not write (${added.slice(0, 3).join(', ')}${added.length > 3 ? `, and ${added.length - 3} more` : ''}), so --force will not replace it`,
      'move those files out of the bundle (or delete them) and build again, or choose another --out folder',
    );
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Writes a folder atomically: `fill` writes into a temporary sibling
 * `.<name>.partial-<pid>-<time>`, which is renamed to `dest` only when
 * complete. On any error or interrupt the temporary folder is removed and
 * `dest` is left as it was. An existing `dest` is replaced only when
 * `overwrite` is set and it is an Alki bundle ({@link assertWritableBundleDir}).
 */
export async function writeDirAtomically<T>(dest: string, overwrite: boolean, fill: (tmp: string) => Promise<T>, o: ReplaceOptions = {}): Promise<T> {
  assertWritableBundleDir(dest, overwrite, o);
  const target = resolve(dest);
  const tmp = tempSibling(dest);
  try {
    const result = await fill(tmp.dir);
    // Checked again: the folder may have appeared while the bundle was being built.
    assertWritableBundleDir(dest, overwrite, o);
    if (existsSync(target)) {
      // Move the old bundle aside first so that a failure never leaves neither.
      const old = `${tmp.dir}-old`;
      renameSync(target, old);
      renameSync(tmp.dir, target);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp.dir, target);
    }
    return result;
  } catch (e) {
    throw fsError(e, `writing ${dest}`);
  } finally {
    tmp.remove();
  }
}

/**
 * Removes temporary folders of `name` (`.<name>.partial-<pid>-…`: partial bundles, fp32 baselines) left by
 * processes that no longer run — killed with SIGKILL, power loss.
 */
function sweepStalePartials(parent: string, name: string): void {
  const prefix = `.${name}.partial-`;
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isProcessRunning(pid)) rmSync(join(parent, entry), { recursive: true, force: true });
  }
}
