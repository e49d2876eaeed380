import { createWriteStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { makeDirs } from '@alki/core/node';
import { defaultCacheDir } from './cache-dir.js';
import { isPickleCheckpoint, PICKLE_HINT } from './pickle.js';

export interface HubOptions {
  /** Hub base URL; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Access token for gated/private models; default $HF_TOKEN. */
  token?: string;
  /** Cache root; default {@link defaultCacheDir}. */
  cacheDir?: string;
  /** Longest wait for an answer, and for the next bytes of a download (default 30 s; env ALKI_HUB_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Download config.json alone (for plans: no weights). */
  configOnly?: boolean;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** `owner/name` with the characters the hub allows. */
export function looksLikeHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..');
}

/** A branch, tag or commit as the hub allows them, and nothing that could leave a folder. */
export function isSafeRevision(s: string): boolean {
  return /^[A-Za-z0-9][\w.\-/]{0,254}$/.test(s) && !s.includes('..') && !s.includes('//') && !s.endsWith('/');
}

const SHA = /^[0-9a-f]{40}$/;
/** A shard file name as the index names it: no folders. */
const SHARD = /^[\w.-]+\.safetensors$/;

/** The files Alki needs from a model repository. */
function wanted(files: string[]): string[] {
  const side = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
  const out = files.filter((f) => side.includes(f));
  if (files.includes('model.safetensors')) out.push('model.safetensors');
  else if (files.includes('model.safetensors.index.json')) out.push('model.safetensors.index.json');
  return out;
}

/** `path` resolved, after checking it stays inside `root` (a hostile hub must not steer writes out of the cache). */
function inside(root: string, ...parts: string[]): string {
  const p = resolve(root, ...parts);
  const rel = relative(resolve(root), p);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new AlkiError('NETWORK', `the hub named a path outside the cache: ${parts.join('/')}`, 'the hub or mirror (HF_ENDPOINT) answered something no hub would; check HF_ENDPOINT');
  return p;
}

/**
 * Downloads a model repository's config, tokenizer and safetensors files into
 * `<cache>/hub/<owner>--<name>/snapshots/<commit>/` (each file via a .part file
 * and a rename, so an interrupted download is never mistaken for a complete
 * one). A cached snapshot is reused without network. Nothing the hub answers is
 * trusted: the commit must be 40 hex digits, file names come from a fixed list
 * (shards: plain names), every path is checked to stay in the cache, and every
 * request and read has a timeout.
 */
export async function downloadFromHub(id: string, o: HubOptions = {}): Promise<{ dir: string; revision: string; commitSha: string }> {
  if (!looksLikeHubId(id)) throw new AlkiError('BAD_OPTION', `"${id}" is not a hub id`, 'a hub id looks like owner/name, e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0');
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(endpoint)) throw new AlkiError('BAD_OPTION', `HF_ENDPOINT "${endpoint}" is not an http(s) URL`, 'set HF_ENDPOINT to a hub mirror such as https://hf-mirror.com, or unset it');
  const revision = o.revision ?? 'main';
  if (!isSafeRevision(revision)) throw new AlkiError('BAD_OPTION', `--revision "${revision}" is not a branch, tag or commit name`, 'use e.g. main, v1.0, or a 40-character commit sha');
  const timeoutMs = o.timeoutMs ?? Number(process.env.ALKI_HUB_TIMEOUT_MS ?? 30_000);
  const token = o.token ?? process.env.HF_TOKEN;
  const cache = resolve(o.cacheDir ?? defaultCacheDir());
  const repoDir = inside(cache, 'hub', id.replace('/', '--'));
  const refFile = inside(repoDir, 'refs', revision.replace(/[^\w.-]/g, '_'));
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const cachedSha = (): string | undefined => {
    if (!existsSync(refFile)) return undefined;
    const sha = readFileSync(refFile, 'utf8').trim();
    return SHA.test(sha) && existsSync(inside(repoDir, 'snapshots', sha, 'config.json')) ? sha : undefined;
  };

  const get = async (url: string): Promise<Response | undefined> => {
    let res: Response;
    // The timeout covers the wait for an answer; a download's body has its own idle timeout (fetchFile).
    const answer = new AbortController();
    const timer = setTimeout(() => answer.abort(), timeoutMs);
    try {
      res = await fetch(url, { headers, signal: AbortSignal.any([answer.signal, ...(o.signal ? [o.signal] : [])]), redirect: 'follow' });
    } catch (e) {
      if (o.signal?.aborted) throw new AlkiError('ABORTED', 'the download was interrupted', 'run the command again: finished files are kept');
      if (cachedSha()) return undefined; // offline, with this revision cached
      const why = answer.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : ((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message);
      throw new AlkiError('NETWORK', `cannot reach the HuggingFace hub at ${endpoint} (${why})`, 'check the network, set HF_ENDPOINT to a mirror, or download the model folder yourself and pass its path', { cause: e });
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 401 || res.status === 403) {
      throw new AlkiError('NETWORK', `the hub refused access to ${id} (HTTP ${res.status})`, 'the model may be gated or private: accept its license on the hub and set HF_TOKEN to an access token');
    }
    if (res.status === 404) throw new AlkiError('NOT_FOUND', `${id} (revision ${revision}) was not found on ${endpoint}`, 'check the model id and --revision; for a local folder, check the path');
    if (!res.ok) throw new AlkiError('NETWORK', `the hub answered HTTP ${res.status} for ${url}`, 'try again later');
    return res;
  };

  const info = await get(`${endpoint}/api/models/${id}/revision/${encodeURIComponent(revision)}`);
  if (!info) {
    const sha = cachedSha()!;
    return { dir: inside(repoDir, 'snapshots', sha), revision, commitSha: sha };
  }
  let json: { sha?: unknown; siblings?: unknown };
  try {
    json = (await info.json()) as typeof json;
    if (!json || typeof json !== 'object') throw new Error('not an object');
  } catch {
    throw new AlkiError('NETWORK', `${endpoint} did not answer with the hub's JSON for ${id} (content-type ${info.headers.get('content-type') ?? 'none'})`, 'HF_ENDPOINT must point to a HuggingFace hub or mirror, not a web page');
  }
  const commitSha = typeof json.sha === 'string' && SHA.test(json.sha) ? json.sha : SHA.test(revision) && json.sha === undefined ? revision : undefined;
  if (!commitSha) throw new AlkiError('NETWORK', `the hub's answer for ${id} carries no valid commit sha (${JSON.stringify(json.sha)?.slice(0, 60)})`, 'the hub or mirror (HF_ENDPOINT) answered something no hub would; check HF_ENDPOINT');
  const files = Array.isArray(json.siblings) ? json.siblings.map((s) => (s as { rfilename?: unknown })?.rfilename).filter((f): f is string => typeof f === 'string') : [];
  const dir = inside(repoDir, 'snapshots', commitSha);
  makeDirs(dir);
  const todo = o.configOnly ? wanted(files).filter((f) => f === 'config.json') : wanted(files);
  if (!todo.includes('config.json')) throw new AlkiError('NOT_A_MODEL', `${id} has no config.json on the hub`, 'Alki builds transformers models (config.json + safetensors)');
  if (!o.configOnly && !todo.some((f) => f.startsWith('model.safetensors'))) {
    const pickles = files.filter(isPickleCheckpoint);
    if (pickles.length) throw new AlkiError('NOT_A_MODEL', `${id} has only pickle checkpoints on the hub (${pickles.slice(0, 3).join(', ')}), no safetensors`, PICKLE_HINT);
    throw new AlkiError('NOT_A_MODEL', `${id} has no safetensors weights on the hub`, 'Alki reads model.safetensors (or a sharded index); pick a repository that has them');
  }
  const fetchFile = async (name: string) => {
    const dest = inside(dir, name);
    if (existsSync(dest)) return;
    const res = (await get(`${endpoint}/${id}/resolve/${commitSha}/${name}`))!;
    const declared = Number(res.headers.get('content-length') ?? 0);
    const total = Number.isSafeInteger(declared) && declared > 0 ? declared : 0;
    let done = 0;
    const part = `${dest}.part`;
    // An idle timeout: a mirror that stops sending must not hang the build.
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), timeoutMs);
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), timeoutMs);
        done += chunk.length;
        if (total && done > total) return cb(new AlkiError('NETWORK', `the hub sent more than the ${total} bytes it announced for ${name}`, 'run the command again'));
        o.onProgress?.({ step: 'download', done, total: total || done, detail: name, unit: 'bytes' });
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, createWriteStream(part), { signal: AbortSignal.any([idle.signal, ...(o.signal ? [o.signal] : [])]) });
      if (total && done !== total) throw new AlkiError('NETWORK', `the download of ${name} stopped at ${done} of ${total} bytes`, 'run the command again');
      renameSync(part, dest);
    } catch (e) {
      rmSync(part, { force: true });
      if (o.signal?.aborted) throw new AlkiError('ABORTED', 'the download was interrupted', 'run the command again: finished files are kept');
      if (idle.signal.aborted) throw new AlkiError('NETWORK', `the download of ${name} stalled: no data for ${timeoutMs / 1000} s after ${done} bytes`, 'check the network and run the command again');
      if (e instanceof AlkiError) throw e;
      throw new AlkiError('NETWORK', `the download of ${name} was cut after ${done} bytes (${(e as Error).message})`, 'check the network and run the command again', { cause: e });
    } finally {
      clearTimeout(timer);
    }
  };
  for (const f of todo) await fetchFile(f);
  // A plan needs the config alone; the snapshot is not marked as this revision's (it is not complete).
  if (o.configOnly) return { dir, revision, commitSha };
  if (todo.includes('model.safetensors.index.json')) {
    let map: unknown;
    try {
      map = JSON.parse(readFileSync(inside(dir, 'model.safetensors.index.json'), 'utf8')).weight_map;
    } catch {
      map = undefined;
    }
    const shards = map && typeof map === 'object' ? Object.values(map as Record<string, unknown>) : [];
    if (shards.length === 0 || shards.some((s) => typeof s !== 'string' || !SHARD.test(s))) {
      rmSync(inside(dir, 'model.safetensors.index.json'), { force: true });
      throw new AlkiError('CORRUPT_SAFETENSORS', `the model.safetensors.index.json of ${id} has no usable weight_map (shards must be plain *.safetensors file names)`, 'the repository is damaged or not a transformers checkpoint');
    }
    for (const shard of [...new Set(shards as string[])].sort()) await fetchFile(shard);
  }
  makeDirs(inside(repoDir, 'refs'));
  writeFileSync(refFile, commitSha);
  return { dir, revision, commitSha };
}
