import { AlkiError } from '@alki/core';

/** Where a browser reads a bundle's files from: a URL, or files the user picked or dropped. Browser-safe. */
export interface BundleSource {
  /** How the bundle is named in reports and errors (its URL or folder name). */
  label: string;
  /** The bytes of a file, by its path inside the bundle ("alki.json", "onnx/model_q4.onnx"), refused above `maxBytes`. */
  read(path: string, maxBytes?: number): Promise<Uint8Array>;
}

/** How long a server may take to start answering, and to send the next bytes (a stalled one must not hang the page). */
const TIMEOUT_MS = 60_000;

function tooLarge(label: string, path: string, bytes: number, max: number): AlkiError {
  return new AlkiError(
    'TOO_LARGE',
    `${label}/${path} has ${bytes} bytes, more than the ${max} it may have`,
    'the bundle is damaged, or too large for a browser: build it again (fewer bits, a smaller model)',
  );
}

/** A bundle served over HTTP: `url` is the folder that holds alki.json. */
export function bundleFromUrl(url: string, fetchImpl: typeof fetch = fetch): BundleSource {
  const base = url.endsWith('/') ? url : `${url}/`;
  return {
    label: url,
    async read(path, maxBytes = Number.MAX_SAFE_INTEGER) {
      const at = new URL(path, new URL(base, globalThis.location?.href ?? 'http://127.0.0.1/')).href;
      const idle = new AbortController();
      let timer = setTimeout(() => idle.abort(), TIMEOUT_MS);
      const stalled = () => new AlkiError('NETWORK', `${at} sent nothing for ${TIMEOUT_MS / 1000} s`, 'check that the server is running and try again');
      try {
        let res: Response;
        try {
          res = await fetchImpl(at, { signal: idle.signal });
        } catch (e) {
          if (idle.signal.aborted) throw stalled();
          throw new AlkiError('NETWORK', `could not fetch ${at}: ${(e as Error).message}`, 'check that the server is running and the URL is right');
        }
        if (!res.ok) {
          throw new AlkiError(
            'NOT_FOUND',
            `${at} answered ${res.status} ${res.statusText}`.trim(),
            'the bundle URL must be the folder that holds alki.json, served over HTTP (e.g. `alki bench BUNDLE --browser` serves it)',
          );
        }
        const declared = Number(res.headers.get('content-length'));
        if (declared > maxBytes) throw tooLarge(base, path, declared, maxBytes);
        if (!res.body) return new Uint8Array(await res.arrayBuffer());
        // Read in chunks: the size is checked as it arrives, and a pause longer than the timeout stops the read.
        const parts: Uint8Array[] = [];
        let total = 0;
        const reader = res.body.getReader();
        for (;;) {
          clearTimeout(timer);
          timer = setTimeout(() => idle.abort(), TIMEOUT_MS);
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (idle.signal.aborted) throw stalled();
            throw new AlkiError('NETWORK', `reading ${at} failed after ${total} bytes: ${(e as Error).message}`, 'check the server and try again');
          }
          if (chunk.done) break;
          total += chunk.value.byteLength;
          if (total > maxBytes) {
            await reader.cancel();
            throw tooLarge(base, path, total, maxBytes);
          }
          parts.push(chunk.value);
        }
        const out = new Uint8Array(total);
        let at0 = 0;
        for (const p of parts) {
          out.set(p, at0);
          at0 += p.byteLength;
        }
        return out;
      } finally {
        clearTimeout(timer);
      }
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
    async read(path, maxBytes = Number.MAX_SAFE_INTEGER) {
      const blob = files.get(prefix + path);
      if (!blob) throw new AlkiError('NOT_FOUND', `${label} has no ${path}`, 'pick the whole bundle folder (alki.json, onnx/, the tokenizer files)');
      if (blob.size > maxBytes) throw tooLarge(label, path, blob.size, maxBytes);
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
}
