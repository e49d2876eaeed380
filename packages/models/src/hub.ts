import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { downloadFile, getHFHubCachePath, HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { makeDirs } from '@alki/core/node';
import { ONNX_SOURCE_GRAPH } from './onnx-folder.js';
import { isPickleCheckpoint, PICKLE_HINT } from './pickle.js';

export interface HubOptions {
  /** Hub base URL; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Access token for gated/private models (hf_…); default $HF_TOKEN. */
  token?: string;
  /**
   * The Hugging Face hub cache (the layout Python's huggingface_hub uses, so downloads are shared both ways);
   * default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
   */
  hubCache?: string;
  /** No network: use what the hub cache holds (default: $HF_HUB_OFFLINE set to 1/true/yes/on). */
  offline?: boolean;
  /** Longest wait for an answer, and for the next bytes of a download (default 30 s; env ALKI_HUB_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Download config.json alone (for plans: no weights). */
  configOnly?: boolean;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Where a hub model lies once it is cached. */
export interface HubSnapshot {
  /** `<hub cache>/models--owner--name/snapshots/<commit>`: a model folder. */
  dir: string;
  revision: string;
  /** The commit the revision resolved to (recorded in alki.json). */
  commitSha: string;
}

/** `owner/name` with the characters the hub allows. */
export function looksLikeHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..');
}

/** A branch, tag or commit as the hub allows them, and nothing that could leave a folder. */
export function isSafeRevision(s: string): boolean {
  return /^[A-Za-z0-9][\w.\-/]{0,254}$/.test(s) && !s.includes('..') && !s.includes('//') && !s.endsWith('/');
}

/** The hub cache folder: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub (as huggingface_hub resolves it). */
export function hubCacheDir(): string {
  return getHFHubCachePath();
}

/** HF_HUB_OFFLINE as huggingface_hub reads it. */
export function hubOfflineFromEnv(): boolean {
  return /^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '');
}

const SHA = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** A shard file name as the index names it: no folders. */
const SHARD = /^[\w.-]+\.safetensors$/;
/** The float graph of an ONNX-only repository and its external data (transformers.js names), nothing else of onnx/. */
const ONNX_FILE = /^onnx\/model\.onnx(_data(_\d{1,3})?)?$/;
const SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The files Alki needs from a model repository's top level. */
function wanted(files: string[], configOnly: boolean): string[] {
  if (configOnly) return files.filter((f) => f === 'config.json');
  const out = files.filter((f) => SIDE_FILES.includes(f));
  if (files.includes('model.safetensors')) out.push('model.safetensors');
  else if (files.includes('model.safetensors.index.json')) out.push('model.safetensors.index.json');
  return out;
}

/** `path` resolved, after checking it stays inside `root` (a hostile hub must not steer writes out of the cache). */
function inside(root: string, ...parts: string[]): string {
  const p = resolve(root, ...parts);
  const rel = relative(resolve(root), p);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new AlkiError(
      'NETWORK',
      `the hub named a path outside the cache: ${parts.join('/')}`,
      'the hub or mirror (HF_ENDPOINT) answered something no hub would; check HF_ENDPOINT',
    );
  return p;
}

/** What the hub says a file is: its size and the blob name the cache keys it by (sha256 for LFS, git sha1 otherwise). */
interface RemoteFile {
  path: string;
  size: number;
  etag: string;
  /** How `etag` is checked: the sha256 of the bytes (LFS), or git's blob sha1. */
  check: 'sha256' | 'git-sha1';
}

function remoteFile(e: ListFileEntry): RemoteFile | undefined {
  if (e.type !== 'file') return undefined;
  const size = e.lfs?.size ?? e.size;
  if (!Number.isSafeInteger(size) || size < 0) return undefined;
  if (e.lfs && typeof e.lfs.oid === 'string' && SHA256.test(e.lfs.oid)) return { path: e.path, size, etag: e.lfs.oid, check: 'sha256' };
  if (!e.lfs && typeof e.oid === 'string' && SHA.test(e.oid)) return { path: e.path, size, etag: e.oid, check: 'git-sha1' };
  return undefined;
}

function newHash(f: RemoteFile): Hash {
  const h = createHash(f.check === 'sha256' ? 'sha256' : 'sha1');
  if (f.check === 'git-sha1') h.update(`blob ${f.size}\0`);
  return h;
}

/**
 * Downloads what Alki needs of a model repository (config, tokenizer files, safetensors weights: one file or an
 * index and its shards; for an ONNX-only repository, onnx/model.onnx and its external data; never pickles) into the Hugging Face hub cache, in the layout Python's huggingface_hub
 * uses: `models--owner--name/blobs/<etag>`, `snapshots/<commit>/<file>` linking to the blob, and
 * `refs/<revision>` holding the commit. Models a Python tool downloaded are reused, and Alki's downloads serve
 * Python tools. Metadata comes through @huggingface/hub (the revision's commit, the file listing with sizes and
 * sha256s); each file is fetched with ranged requests into `blobs/<etag>.incomplete`, so an interrupted download
 * resumes where it stopped, and its size and hash are checked before it is renamed into place. Offline
 * (`offline`, HF_HUB_OFFLINE=1), or when the hub cannot be reached, a cached snapshot of the revision is used.
 * Nothing the hub answers is trusted: the commit must be 40 hex digits, file names come from a fixed list (shards:
 * plain names), every path is checked to stay in the cache, and every request and read has a timeout.
 */
export async function downloadFromHub(id: string, o: HubOptions = {}): Promise<HubSnapshot> {
  if (!looksLikeHubId(id))
    throw new AlkiError('BAD_OPTION', `"${id}" is not a hub id`, 'a hub id looks like owner/name, e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0');
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(endpoint))
    throw new AlkiError(
      'BAD_OPTION',
      `HF_ENDPOINT "${endpoint}" is not an http(s) URL`,
      'set HF_ENDPOINT to a hub mirror such as https://hf-mirror.com, or unset it',
    );
  const revision = o.revision ?? 'main';
  if (!isSafeRevision(revision))
    throw new AlkiError('BAD_OPTION', `--revision "${revision}" is not a branch, tag or commit name`, 'use e.g. main, v1.0, or a 40-character commit sha');
  const timeoutMs = o.timeoutMs ?? Number(process.env.ALKI_HUB_TIMEOUT_MS ?? 30_000);
  const token = o.token ?? process.env.HF_TOKEN;
  if (token !== undefined && token !== '' && !token.startsWith('hf_')) {
    throw new AlkiError(
      'BAD_OPTION',
      'the access token (HF_TOKEN) does not look like a Hugging Face token: they start with "hf_"',
      'create one at https://huggingface.co/settings/tokens and set HF_TOKEN to it, or unset HF_TOKEN for public models',
    );
  }
  const accessToken = token || undefined;
  const cache = resolve(o.hubCache ?? hubCacheDir());
  const repoDir = inside(cache, `models--${id.replace('/', '--')}`);
  const refFile = inside(repoDir, 'refs', revision);
  const needed = (dir: string) =>
    existsSync(join(dir, 'config.json')) &&
    (o.configOnly || ['model.safetensors', 'model.safetensors.index.json', ONNX_SOURCE_GRAPH].some((f) => existsSync(join(dir, f))));
  const cached = (): HubSnapshot | undefined => {
    let sha = SHA.test(revision) ? revision : undefined;
    if (!sha && existsSync(refFile) && statSync(refFile).isFile()) sha = readFileSync(refFile, 'utf8').trim();
    if (!sha || !SHA.test(sha)) return undefined;
    const dir = inside(repoDir, 'snapshots', sha);
    return needed(dir) && shardsPresent(dir) ? { dir, revision, commitSha: sha } : undefined;
  };
  if (o.offline ?? hubOfflineFromEnv()) {
    const hit = cached();
    if (hit) return hit;
    throw new AlkiError(
      'NOT_FOUND',
      `offline (HF_HUB_OFFLINE or --offline), and ${id} (revision ${revision}) is not in the hub cache at ${cache}`,
      'download it once with network (alki build, or huggingface-cli download), point HF_HUB_CACHE/HF_HOME at the cache that has it, or pass a local folder',
    );
  }

  // Every request: an answer within the timeout, and the caller's stop.
  const hubFetch: typeof fetch = async (input, init) => {
    const answer = new AbortController();
    const timer = setTimeout(() => answer.abort(), timeoutMs);
    try {
      return await fetch(input, { ...init, signal: AbortSignal.any([answer.signal, ...(o.signal ? [o.signal] : []), ...(init?.signal ? [init.signal] : [])]) });
    } catch (e) {
      if (answer.signal.aborted && !o.signal?.aborted) throw new Error(`no answer within ${timeoutMs / 1000} s`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
  const explain = (e: unknown, what: string): never => {
    if (e instanceof AlkiError) throw e;
    if (o.signal?.aborted)
      throw new AlkiError('ABORTED', 'the download was interrupted', 'run the command again: finished files are kept, a partial one resumes');
    if (e instanceof HubApiError) {
      if (e.statusCode === 401 || e.statusCode === 403) {
        throw new AlkiError(
          'NETWORK',
          `the hub refused access to ${id} (HTTP ${e.statusCode})`,
          accessToken
            ? 'the model may be gated: open its page on huggingface.co, accept its conditions with the account the token belongs to, and check that HF_TOKEN is valid and can read it'
            : 'the model may be gated or private: open its page on huggingface.co and accept its conditions, then create an access token at https://huggingface.co/settings/tokens and set HF_TOKEN to it',
          { cause: e },
        );
      }
      if (e.statusCode === 404)
        throw new AlkiError(
          'NOT_FOUND',
          `${id} (revision ${revision}) was not found on ${endpoint}`,
          'check the model id and --revision; for a local folder, check the path',
          { cause: e },
        );
      throw new AlkiError('NETWORK', `the hub answered HTTP ${e.statusCode} for ${what}`, 'try again later', { cause: e });
    }
    if (e instanceof SyntaxError || (e as Error)?.name === 'InvalidApiResponseFormatError') {
      throw new AlkiError(
        'NETWORK',
        `${endpoint} did not answer with the hub's JSON for ${what}`,
        'HF_ENDPOINT must point to a HuggingFace hub or mirror, not a web page',
        { cause: e },
      );
    }
    const why = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
    throw new AlkiError(
      'NETWORK',
      `cannot reach the HuggingFace hub at ${endpoint} (${why})`,
      'check the network, set HF_ENDPOINT to a mirror, use HF_HUB_OFFLINE=1 with a filled cache, or download the model folder yourself and pass its path',
      { cause: e },
    );
  };
  const online = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (e) {
      // Unreachable, with this revision cached: work offline, as huggingface_hub does.
      if (!(e instanceof HubApiError) && !o.signal?.aborted && !(e instanceof SyntaxError) && cached()) return undefined;
      return explain(e, what);
    }
  };

  const info = await online(`${id}@${revision}`, () =>
    modelInfo({ name: id, revision, hubUrl: endpoint, accessToken, additionalFields: ['sha'], fetch: hubFetch }),
  );
  if (!info) return cached()!;
  const commitSha = typeof info.sha === 'string' && SHA.test(info.sha) ? info.sha : undefined;
  if (!commitSha)
    throw new AlkiError(
      'NETWORK',
      `the hub's answer for ${id} carries no valid commit sha (${JSON.stringify(info.sha)?.slice(0, 60)})`,
      'the hub or mirror (HF_ENDPOINT) answered something no hub would; check HF_ENDPOINT',
    );
  /** One folder of the repository at the commit (its top level without `path`). */
  const list = (path?: string) =>
    online(`the files of ${id}${path ? `/${path}` : ''}`, async () => {
      const out: ListFileEntry[] = [];
      for await (const e of listFiles({ repo: { type: 'model', name: id }, revision: commitSha, path, hubUrl: endpoint, accessToken, fetch: hubFetch }))
        out.push(e);
      return out;
    });
  const listing = await list();
  if (!listing) return cached()!;
  const remote = new Map<string, RemoteFile>();
  const add = (entries: ListFileEntry[], keep: (path: string) => boolean = () => true) => {
    for (const e of entries) {
      const f = remoteFile(e);
      if (f && keep(f.path)) remote.set(f.path, f);
    }
    return [...remote.keys()];
  };
  let names = add(listing);
  let todo = wanted(names, !!o.configOnly);
  if (!todo.includes('config.json'))
    throw new AlkiError('NOT_A_MODEL', `${id} has no config.json on the hub`, 'Alki builds transformers models (config.json + safetensors)');
  if (!o.configOnly && !todo.some((f) => f.startsWith('model.safetensors'))) {
    // No safetensors: an ONNX-only repository (onnx-community, Optimum) is built from its float graph.
    const onnx = listing.some((e) => e.type === 'directory' && e.path === 'onnx') ? await list('onnx') : [];
    if (!onnx) return cached()!;
    names = add(onnx, (path) => ONNX_FILE.test(path));
    if (names.includes(ONNX_SOURCE_GRAPH)) {
      todo = [...todo, ...names.filter((f) => ONNX_FILE.test(f)).sort()];
    } else {
      const pickles = names.filter(isPickleCheckpoint);
      if (pickles.length)
        throw new AlkiError('NOT_A_MODEL', `${id} has only pickle checkpoints on the hub (${pickles.slice(0, 3).join(', ')}), no safetensors`, PICKLE_HINT);
      throw new AlkiError(
        'NOT_A_MODEL',
        `${id} has no safetensors weights and no onnx/model.onnx on the hub`,
        'Alki reads model.safetensors (or a sharded index), or the float graph of an ONNX-only repository; pick a repository that has them',
      );
    }
  }
  const snapshot = inside(repoDir, 'snapshots', commitSha);
  // Mid-download failures never fall back to an older snapshot: the file resumes on the next run.
  const fetchOne = (f: RemoteFile) =>
    fetchToCache(id, f, { repoDir, snapshot, endpoint, commitSha, accessToken, hubFetch, timeoutMs, onProgress: o.onProgress, signal: o.signal }).catch((e) =>
      explain(e, f.path),
    );
  for (const name of todo) await fetchOne(remote.get(name)!);
  if (todo.includes('model.safetensors.index.json')) {
    const shards = shardNames(snapshot);
    if (!shards)
      throw new AlkiError(
        'CORRUPT_SAFETENSORS',
        `the model.safetensors.index.json of ${id} has no usable weight_map (shards must be plain *.safetensors file names)`,
        'the repository is damaged or not a transformers checkpoint',
      );
    for (const shard of shards) {
      const f = remote.get(shard);
      if (!f)
        throw new AlkiError(
          'CORRUPT_SAFETENSORS',
          `the index of ${id} names ${shard}, which the repository does not have`,
          'the repository is damaged; try another revision',
        );
      await fetchOne(f);
    }
  }
  // A plan needs the config alone: the revision is not marked as cached (its snapshot is not complete).
  if (!o.configOnly && !SHA.test(revision)) {
    makeDirs(dirname(refFile));
    writeFileSync(refFile, commitSha);
  }
  return { dir: snapshot, revision, commitSha };
}

/** The shard names of a snapshot's index, sorted and unique; undefined when unusable. */
function shardNames(dir: string): string[] | undefined {
  let map: unknown;
  try {
    map = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')).weight_map;
  } catch {
    return undefined;
  }
  const shards = map && typeof map === 'object' ? Object.values(map as Record<string, unknown>) : [];
  if (shards.length === 0 || shards.some((s) => typeof s !== 'string' || !SHARD.test(s))) return undefined;
  return [...new Set(shards as string[])].sort();
}

function shardsPresent(dir: string): boolean {
  if (!existsSync(join(dir, 'model.safetensors.index.json'))) return true;
  const shards = shardNames(dir);
  return !!shards && shards.every((s) => existsSync(join(dir, s)));
}

/** Points `link` at `blob` as huggingface_hub does (a relative symlink), or copies where symlinks are not allowed. */
function linkBlob(blob: string, link: string): void {
  makeDirs(dirname(link));
  if (existsSync(link) || isDanglingLink(link)) rmSync(link, { force: true });
  try {
    symlinkSync(relative(dirname(link), blob), link);
  } catch {
    writeFileSync(link, readFileSync(blob));
  }
}

function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink() && !existsSync(resolve(dirname(p), readlinkSync(p)));
  } catch {
    return false;
  }
}

/** The hash of a file's bytes so far (a partial download being resumed). */
async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

interface FetchContext {
  repoDir: string;
  snapshot: string;
  endpoint: string;
  commitSha: string;
  accessToken?: string;
  hubFetch: typeof fetch;
  timeoutMs: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** One file into the cache: reused when its snapshot entry or blob is there, else downloaded (resuming), checked and linked. */
async function fetchToCache(id: string, f: RemoteFile, c: FetchContext): Promise<void> {
  const dest = inside(c.snapshot, f.path);
  if (existsSync(dest) && statSync(dest).size === f.size) return;
  const blob = inside(c.repoDir, 'blobs', f.etag);
  if (existsSync(blob) && statSync(blob).size === f.size) {
    linkBlob(blob, dest);
    return;
  }
  makeDirs(dirname(blob));
  const part = `${blob}.incomplete`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > f.size) {
    rmSync(part);
    have = 0;
  }
  const hash = newHash(f);
  if (have > 0) await hashFile(part, hash);
  if (have < f.size) {
    const file = await downloadFile({
      repo: { type: 'model', name: id },
      path: f.path,
      revision: c.commitSha,
      hubUrl: c.endpoint,
      accessToken: c.accessToken,
      fetch: c.hubFetch,
      xet: false,
    });
    if (!file) throw new AlkiError('NOT_FOUND', `${f.path} of ${id} is listed but cannot be downloaded`, 'try again later; the repository may be changing');
    if (file.size !== f.size)
      throw new AlkiError(
        'NETWORK',
        `the hub announces ${file.size} bytes for ${f.path}, its listing ${f.size}`,
        'the hub or mirror answered inconsistently; try again later',
      );
    // An idle timeout: a mirror that stops sending must not hang the build.
    const fd = openSync(part, 'a');
    const started = performance.now();
    const resumedAt = have;
    const reader = file.slice(have).stream().getReader();
    try {
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new AlkiError(
                  'NETWORK',
                  `the download of ${f.path} stalled: no data for ${c.timeoutMs / 1000} s after ${have} bytes`,
                  'check the network and run the command again: it resumes where it stopped',
                ),
              ),
            c.timeoutMs,
          );
        });
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await Promise.race([reader.read(), stalled]);
        } finally {
          clearTimeout(timer);
        }
        if (next.done) break;
        const chunk = next.value;
        if (have + chunk.length > f.size)
          throw new AlkiError('NETWORK', `the hub sent more than the ${f.size} bytes it listed for ${f.path}`, 'run the command again');
        writeSync(fd, chunk);
        hash.update(chunk);
        have += chunk.length;
        const seconds = (performance.now() - started) / 1000;
        const rate = seconds > 0 ? (have - resumedAt) / seconds : 0;
        c.onProgress?.({
          step: 'download',
          done: have,
          total: f.size,
          unit: 'bytes',
          detail: `${f.path}${rate > 0 ? ` ${(rate / 1e6).toFixed(1)} MB/s` : ''}${resumedAt > 0 ? `, resumed at ${resumedAt} bytes` : ''}`,
        });
        if (c.signal?.aborted) throw new AlkiError('ABORTED', 'the download was interrupted', 'run the command again: it resumes where it stopped');
      }
    } catch (e) {
      if (e instanceof AlkiError) throw e;
      throw new AlkiError(
        'NETWORK',
        `the download of ${f.path} was cut after ${have} of ${f.size} bytes (${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message})`,
        'check the network and run the command again: it resumes where it stopped',
        { cause: e },
      );
    } finally {
      closeSync(fd);
      await reader.cancel().catch(() => undefined);
    }
    if (have !== f.size)
      throw new AlkiError('NETWORK', `the download of ${f.path} stopped at ${have} of ${f.size} bytes`, 'run the command again: it resumes where it stopped');
  }
  const digest = hash.digest('hex');
  if (digest !== f.etag) {
    rmSync(part, { force: true });
    throw new AlkiError(
      'NETWORK',
      `${f.path} of ${id} failed its checksum (${f.check} ${digest.slice(0, 12)}…, the hub lists ${f.etag.slice(0, 12)}…); the partial file was deleted`,
      'run the command again; if it fails again, the mirror (HF_ENDPOINT) serves damaged files',
    );
  }
  renameSync(part, blob);
  linkBlob(blob, dest);
}
