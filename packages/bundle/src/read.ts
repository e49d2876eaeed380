import { existsSync, lstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { AlkiError, fsError, isAlkiError } from '@alki/core';
import { hashFile } from './hash.js';
import { unlistedFiles } from './list-files.js';
import { manifestHash, validateManifest, type BundleFile, type BundleManifest } from './manifest.js';

export interface Bundle {
  dir: string;
  manifest: BundleManifest;
  /** Absolute path of the ONNX decoder. */
  modelPath: string;
}

/** alki.json is a few KB; a file above this is not a manifest. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** Opens a bundle folder and validates its alki.json (not the file hashes: see {@link verifyBundle}). */
export function readBundle(dir: string): Bundle {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new AlkiError('NOT_FOUND', `bundle not found: ${dir}`, 'build one with `alki build <model> --out <folder>`');
  if (!statSync(abs).isDirectory()) throw new AlkiError('BAD_BUNDLE', `${dir} is not a folder`, 'a bundle is a folder with alki.json and its graph in onnx/');
  const path = join(abs, 'alki.json');
  if (!existsSync(path))
    throw new AlkiError('BAD_BUNDLE', `${dir} has no alki.json, so it is not an Alki bundle`, 'build one with `alki build <model> --out <folder>`');
  const stat = statSync(path);
  if (!stat.isFile()) throw new AlkiError('BAD_BUNDLE', `${dir}/alki.json is not a regular file`, 'the manifest is damaged; build the bundle again');
  if (stat.size > MAX_MANIFEST_BYTES)
    throw new AlkiError(
      'BAD_BUNDLE',
      `${dir}/alki.json has ${stat.size} bytes, far more than a manifest holds`,
      'the manifest is damaged; build the bundle again',
    );
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fsError(e, `reading ${dir}/alki.json`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AlkiError(
      'BAD_BUNDLE',
      `${dir}/alki.json is not valid JSON (${(e as Error).message.slice(0, 120)})`,
      'the manifest is damaged; build the bundle again',
    );
  }
  const manifest = validateManifest(json, dir);
  return { dir: abs, manifest, modelPath: join(abs, manifest.model.path) };
}

/** One problem found by {@link verifyBundle}. */
export interface VerifyProblem {
  path: string;
  problem: 'missing' | 'size' | 'sha256' | 'unlisted' | 'manifest';
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  checkedFiles: number;
  checkedBytes: number;
  problems: VerifyProblem[];
}

/**
 * Re-hashes every file listed in alki.json and the manifest itself; reports
 * missing, resized, altered and unlisted files. A flipped byte anywhere in
 * the bundle shows up here.
 */
export function verifyBundle(dir: string): VerifyResult {
  const problems: VerifyProblem[] = [];
  let bundle: Bundle;
  try {
    bundle = readBundle(dir);
  } catch (e) {
    if (isAlkiError(e) && e.code === 'BAD_BUNDLE') {
      return { ok: false, checkedFiles: 0, checkedBytes: 0, problems: [{ path: 'alki.json', problem: 'manifest', detail: e.message }] };
    }
    throw e;
  }
  const m = bundle.manifest;
  if (m.manifestSha256 !== manifestHash(m))
    problems.push({ path: 'alki.json', problem: 'manifest', detail: 'the manifest was changed after it was written (self-hash mismatch)' });
  let checkedBytes = 0;
  for (const f of m.files) {
    const abs = join(bundle.dir, f.path);
    let stat: Stats;
    try {
      stat = lstatSync(abs);
    } catch {
      problems.push({ path: f.path, problem: 'missing', detail: 'listed in alki.json but not in the folder' });
      continue;
    }
    // Not followed: a link could point anywhere, and a folder cannot be hashed.
    if (!stat.isFile()) {
      problems.push({
        path: f.path,
        problem: 'missing',
        detail: `listed in alki.json as a file, but the folder holds a ${stat.isDirectory() ? 'folder' : stat.isSymbolicLink() ? 'symbolic link' : 'special file'} there`,
      });
      continue;
    }
    let actual: BundleFile;
    try {
      actual = hashFile(abs, f.path);
    } catch (e) {
      problems.push({ path: f.path, problem: 'missing', detail: `cannot be read (${(e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message})` });
      continue;
    }
    checkedBytes += actual.bytes;
    if (actual.bytes !== f.bytes) problems.push({ path: f.path, problem: 'size', detail: `${actual.bytes} bytes, alki.json says ${f.bytes}` });
    else if (actual.sha256 !== f.sha256)
      problems.push({ path: f.path, problem: 'sha256', detail: `sha256 ${actual.sha256.slice(0, 12)}…, alki.json says ${f.sha256.slice(0, 12)}…` });
  }
  let unlisted: string[];
  try {
    unlisted = unlistedFiles(bundle.dir, m.files);
  } catch (e) {
    throw fsError(e, `listing the files of ${bundle.dir}`);
  }
  for (const rel of unlisted) problems.push({ path: rel, problem: 'unlisted', detail: 'in the folder but not listed in alki.json' });
  return { ok: problems.length === 0, checkedFiles: m.files.length + 1, checkedBytes, problems };
}
