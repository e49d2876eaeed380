import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { DEMO, hasDemo } from './demo.js';
import { downloadFromHub, looksLikeHubId, type HubOptions } from './hub.js';
import { parseDecoderConfig, readConfigJson, type DecoderConfig } from './config.js';

/** Where a model came from, once it is a local folder. */
export interface ResolvedModel {
  dir: string;
  /** Hub id, folder name, or "demo". */
  id: string;
  revision?: string;
  commitSha?: string;
  kind: 'local' | 'hub' | 'demo';
}

export interface ResolveOptions extends HubOptions {
  onProgress?: ProgressCallback;
}

/**
 * Turns what a user typed into a local model folder: an existing path; the
 * word `demo` (the embedded stories260K, see {@link DEMO}); or a HuggingFace hub
 * id such as `TinyLlama/TinyLlama-1.1B-Chat-v1.0` (downloaded into the cache).
 */
export async function resolveModel(source: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const local = existsSync(source);
  if ((local || source === 'demo') && options.revision !== undefined)
    throw new AlkiError(
      'BAD_OPTION',
      `--revision picks a commit of a hub model, but ${local ? `"${source}" is a local folder` : '`demo` is the embedded model'}: its files are used as they are`,
      local && looksLikeHubId(source)
        ? `drop --revision, or rename or move the folder ./${source} so that the name reaches the hub`
        : 'drop --revision, or give a hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    );
  if (local) return { dir: resolve(source), id: basename(resolve(source)), kind: 'local' };
  if (source === 'demo') {
    if (!hasDemo())
      throw new AlkiError(
        'NOT_FOUND',
        `the embedded demo model is missing from ${DEMO.modelDir}`,
        'reinstall @alki/models (its demo/ folder holds stories260K), or build a model folder or hub id instead',
      );
    return { dir: DEMO.modelDir, id: 'demo', kind: 'demo' };
  }
  if (looksLikeHubId(source)) {
    const r = await downloadFromHub(source, options);
    return { dir: r.dir, id: source, revision: r.revision, commitSha: r.commitSha, kind: 'hub' };
  }
  throw new AlkiError(
    'NOT_FOUND',
    `model folder not found: ${source}`,
    'give an existing folder with config.json and model.safetensors, a hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0, or `demo`',
  );
}

/**
 * The decoder config of a model without its weights: a local folder's config.json, or only config.json downloaded
 * from the hub — what `alki plan` needs to size a bundle.
 */
export async function resolveModelConfig(
  source: string,
  options: ResolveOptions = {},
): Promise<{ id: string; config: DecoderConfig; raw: Record<string, unknown> }> {
  let dir: string;
  let id: string;
  if (existsSync(source) || source === 'demo') {
    const r = await resolveModel(source, options);
    dir = r.dir;
    id = r.id;
  } else if (looksLikeHubId(source)) {
    dir = (await downloadFromHub(source, { ...options, configOnly: true })).dir;
    id = source;
  } else {
    throw new AlkiError(
      'NOT_FOUND',
      `model folder not found: ${source}`,
      'give an existing folder with config.json, a hub id such as TinyLlama/TinyLlama-1.1B-Chat-v1.0, or `demo`',
    );
  }
  const raw = readConfigJson(dir);
  return { id, config: parseDecoderConfig(raw), raw };
}
