import { AlkiError } from '@alki/core';

/** Where a browser reads a bundle's files from: a URL, or files the user picked or dropped. Browser-safe. */
export interface BundleSource {
  /** How the bundle is named in reports and errors (its URL or folder name). */
  label: string;
  /** The bytes of a file, by its path inside the bundle ("alki.json", "onnx/model_q4.onnx"). */
  read(path: string): Promise<Uint8Array>;
}

/** A bundle served over HTTP: `url` is the folder that holds alki.json. */
export function bundleFromUrl(url: string, fetchImpl: typeof fetch = fetch): BundleSource {
  const base = url.endsWith('/') ? url : `${url}/`;
  return {
    label: url,
    async read(path) {
      const at = new URL(path, new URL(base, globalThis.location?.href ?? 'http://127.0.0.1/')).href;
      let res: Response;
      try {
        res = await fetchImpl(at);
      } catch (e) {
        throw new AlkiError('NETWORK', `could not fetch ${at}: ${(e as Error).message}`, 'check that the server is running and the URL is right');
      }
      if (!res.ok) {
        throw new AlkiError('NOT_FOUND', `${at} answered ${res.status} ${res.statusText}`.trim(), 'the bundle URL must be the folder that holds alki.json, served over HTTP (e.g. `alki bench BUNDLE --browser` serves it)');
      }
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

/**
 * A bundle from files the user picked (`<input webkitdirectory>`, the directory picker) or dropped: keys are
 * paths relative to the picked folder; a single top folder around alki.json is looked through.
 */
export function bundleFromFiles(files: Map<string, Blob>, label: string): BundleSource {
  const manifest = [...files.keys()].filter((p) => p === 'alki.json' || p.endsWith('/alki.json')).sort((a, b) => a.length - b.length)[0];
  if (!manifest) throw new AlkiError('BAD_BUNDLE', `${label} holds no alki.json, so it is not an Alki bundle`, 'pick the folder that `alki build` wrote');
  const prefix = manifest.slice(0, manifest.length - 'alki.json'.length);
  return {
    label,
    async read(path) {
      const blob = files.get(prefix + path);
      if (!blob) throw new AlkiError('NOT_FOUND', `${label} has no ${path}`, 'pick the whole bundle folder (alki.json, onnx/, the tokenizer files)');
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
}
