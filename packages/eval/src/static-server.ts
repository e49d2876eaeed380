import { createReadStream, realpathSync, statSync } from 'node:fs';
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

const isolation = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * A static file server on 127.0.0.1 for browser runs: read-only, GET/HEAD only, with the cross-origin isolation
 * headers (COOP/COEP) without which browsers refuse the SharedArrayBuffer that multithreaded WASM needs. Nothing a
 * request says is trusted: a malformed path is a 400, a path (or a symbolic link) leading out of its folder a 403, a
 * Host other than 127.0.0.1:PORT a 421 (so a web page elsewhere cannot reach it by DNS rebinding).
 */
export function serveStatic(routes: StaticRoutes, port = 0): Promise<StaticServer> {
  const log: StaticServer['log'] = [];
  const roots = Object.fromEntries(Object.entries(routes.folders).map(([prefix, dir]) => [prefix, realpathSync(resolve(dir))]));
  let host = '';
  const server: Server = createServer((req, res) => {
    const raw = (req.url ?? '/').split('?')[0];
    const send = (status: number, body?: string, type = 'text/plain; charset=utf-8') => {
      log.push({ path: raw, status });
      res.writeHead(status, { ...isolation, 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.headers.host !== host) return send(421, 'wrong host');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'read-only');
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      return send(400, 'malformed path');
    }
    if (path.includes('\0')) return send(400, 'malformed path');
    const page = routes.pages?.[path];
    if (page) return send(200, page.body, page.type);
    const prefix = Object.keys(roots)
      .filter((p) => path.startsWith(p))
      .sort((a, b) => b.length - a.length)[0];
    if (!prefix) return send(404, 'not found');
    const root = roots[prefix];
    let file: string;
    let size: number;
    try {
      // The real path, links resolved, must stay inside the folder's real path.
      file = realpathSync(resolve(join(root, path.slice(prefix.length))));
      if (file !== root && !file.startsWith(root + sep)) return send(403, 'outside the served folder');
      const st = statSync(file);
      if (!st.isFile()) return send(404, 'not found');
      size = st.size;
    } catch {
      return send(404, 'not found');
    }
    res.writeHead(200, {
      ...isolation,
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      log.push({ path: raw, status: 200 });
      return res.end();
    }
    const stream = createReadStream(file);
    stream.on('error', () => {
      log.push({ path: raw, status: 500 });
      res.destroy();
    });
    stream.on('end', () => log.push({ path: raw, status: 200 }));
    stream.pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const p = typeof address === 'object' && address ? address.port : port;
      host = `127.0.0.1:${p}`;
      ok({ url: `http://${host}`, log, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}
