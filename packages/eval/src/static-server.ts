import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

/** URL prefix ('/models/') → folder, or exact path ('/') → an in-memory page. */
export interface StaticRoutes {
  folders: Record<string, string>;
  pages?: Record<string, { type: string; body: string }>;
}

export interface StaticServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  /** Paths requested, in order, with their status: what a page really fetched. */
  log: { path: string; status: number }[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * A static file server on 127.0.0.1 for browser runs: read-only, GET/HEAD only, paths kept inside their
 * folder, and the cross-origin isolation headers (COOP/COEP) without which browsers refuse the
 * SharedArrayBuffer that multithreaded WASM needs.
 */
export function serveStatic(routes: StaticRoutes, port = 0): Promise<StaticServer> {
  const log: StaticServer['log'] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const send = (status: number, type?: string, body?: string) => {
      log.push({ path, status });
      res.writeHead(status, { ...isolation, ...(type ? { 'content-type': type } : {}) });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405);
    const page = routes.pages?.[path];
    if (page) return send(200, page.type, page.body);
    const prefix = Object.keys(routes.folders).find((p) => path.startsWith(p));
    if (!prefix) return send(404, 'text/plain', 'not found');
    const root = resolve(routes.folders[prefix]);
    const file = resolve(join(root, path.slice(prefix.length)));
    if (file !== root && !file.startsWith(root + sep)) return send(403, 'text/plain', 'outside the served folder');
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return send(404, 'text/plain', 'not found');
      size = st.size;
    } catch {
      return send(404, 'text/plain', 'not found');
    }
    log.push({ path, status: 200 });
    res.writeHead(200, { ...isolation, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': String(size), 'cache-control': 'no-store' });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const p = typeof address === 'object' && address ? address.port : port;
      ok({ url: `http://127.0.0.1:${p}`, log, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

const isolation = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};
