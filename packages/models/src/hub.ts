import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { defaultCacheDir } from './cache-dir.js';

export interface HubOptions {
  /** Hub base URL; default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Access token for gated/private models; default $HF_TOKEN. */
  token?: string;
  /** Cache root; default {@link defaultCacheDir}. */
  cacheDir?: string;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** `owner/name` with the characters the hub allows. */
export function looksLikeHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..');
}

/** The files Alki needs from a model repository. */
function wanted(files: string[]): string[] {
  const side = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
  const out = files.filter((f) => side.includes(f));
  if (files.includes('model.safetensors')) out.push('model.safetensors');
  else if (files.includes('model.safetensors.index.json')) out.push('model.safetensors.index.json');
  return out;
}

/**
 * Downloads a model repository's config, tokenizer and safetensors files into
 * `<cache>/hub/<owner>--<name>/<commit>/` (each file via a .part file and a
 * rename, so an interrupted download is never mistaken for a complete one).
 * A cached snapshot is reused without network.
 */
export async function downloadFromHub(id: string, o: HubOptions = {}): Promise<{ dir: string; revision: string; commitSha: string }> {
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const revision = o.revision ?? 'main';
  const token = o.token ?? process.env.HF_TOKEN;
  const repoDir = join(o.cacheDir ?? defaultCacheDir(), 'hub', id.replace('/', '--'));
  const refFile = join(repoDir, 'refs', revision.replace(/[^\w.-]/g, '_'));
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

  const get = async (url: string): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: o.signal, redirect: 'follow' });
    } catch (e) {
      if (existsSync(refFile)) return new Response(null, { status: 599 });
      throw new AlkiError('NETWORK', `cannot reach the HuggingFace hub at ${endpoint} (${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message})`, 'check the network, set HF_ENDPOINT to a mirror, or download the model folder yourself and pass its path', { cause: e });
    }
    if (res.status === 401 || res.status === 403) {
      throw new AlkiError('NETWORK', `the hub refused access to ${id} (HTTP ${res.status})`, 'the model may be gated or private: accept its license on the hub and set HF_TOKEN to an access token');
    }
    if (res.status === 404) throw new AlkiError('NOT_FOUND', `${id} (revision ${revision}) was not found on ${endpoint}`, 'check the model id and --revision; for a local folder, check the path');
    if (!res.ok) throw new AlkiError('NETWORK', `the hub answered HTTP ${res.status} for ${url}`, 'try again later');
    return res;
  };

  const info = await get(`${endpoint}/api/models/${id}/revision/${encodeURIComponent(revision)}`);
  let commitSha: string;
  let files: string[];
  if (info.status === 599) {
    // Offline with a cached snapshot of this revision.
    commitSha = readFileSync(refFile, 'utf8').trim();
    return { dir: join(repoDir, 'snapshots', commitSha), revision, commitSha };
  } else {
    const json = (await info.json()) as { sha?: string; siblings?: { rfilename: string }[] };
    commitSha = json.sha ?? revision;
    files = (json.siblings ?? []).map((s) => s.rfilename);
  }
  const dir = join(repoDir, 'snapshots', commitSha);
  mkdirSync(dir, { recursive: true });
  const todo = wanted(files);
  if (!todo.includes('config.json')) throw new AlkiError('NOT_A_MODEL', `${id} has no config.json on the hub`, 'Alki builds transformers models (config.json + safetensors)');
  if (!todo.some((f) => f.startsWith('model.safetensors'))) {
    throw new AlkiError('NOT_A_MODEL', `${id} has no safetensors weights on the hub`, 'Alki reads model.safetensors (or a sharded index); pick a repository that has them');
  }
  const fetchFile = async (name: string) => {
    const dest = join(dir, name);
    if (existsSync(dest)) return;
    const res = await get(`${endpoint}/${id}/resolve/${commitSha}/${name}`);
    const total = Number(res.headers.get('content-length') ?? 0);
    let done = 0;
    const part = `${dest}.part`;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('data', (chunk: Buffer) => {
      done += chunk.length;
      o.onProgress?.({ step: 'download', done, total: total || done, detail: name, unit: 'bytes' });
    });
    try {
      await pipeline(body, createWriteStream(part));
      if (total && done !== total) throw new AlkiError('NETWORK', `download of ${name} stopped at ${done} of ${total} bytes`, 'run the command again to resume from scratch');
      renameSync(part, dest);
    } catch (e) {
      rmSync(part, { force: true });
      throw e;
    }
  };
  for (const f of todo) await fetchFile(f);
  if (todo.includes('model.safetensors.index.json')) {
    const map = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')).weight_map as Record<string, string>;
    for (const shard of [...new Set(Object.values(map))].sort()) {
      if (!looksLikeHubId(`x/${shard}`)) throw new AlkiError('CORRUPT_SAFETENSORS', `the index names an unsafe shard path: ${shard}`);
      await fetchFile(shard);
    }
  }
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  writeFileSync(refFile, commitSha);
  return { dir, revision, commitSha };
}
