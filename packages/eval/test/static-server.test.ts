import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic, type StaticServer } from '../src/index.js';
import { tempDir } from '../../../tools/fixtures/index.js';

const t = tempDir('alki-static-');
let server: StaticServer;

/** A raw request, so that paths and headers reach the server exactly as written. */
function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const { port } = new URL(server.url);
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', fail);
    req.end();
  });
}

beforeAll(async () => {
  mkdirSync(join(t.dir, 'site', 'sub'), { recursive: true });
  writeFileSync(join(t.dir, 'site', 'index.html'), '<p>hi');
  writeFileSync(join(t.dir, 'site', 'sub', 'a.wasm'), 'wasm');
  writeFileSync(join(t.dir, 'secret.txt'), 'secret');
  symlinkSync(join(t.dir, 'secret.txt'), join(t.dir, 'site', 'link.txt'));
  server = await serveStatic({ folders: { '/': join(t.dir, 'site') }, pages: { '/page': { type: 'text/plain', body: 'page' } } });
});
afterAll(async () => {
  await server.close();
  t.cleanup();
});

describe('serveStatic: what a browser run serves, and nothing else', () => {
  it('serves files and pages with the cross-origin isolation headers and their types', async () => {
    const r = await get('/sub/a.wasm');
    expect(r).toMatchObject({ status: 200, body: 'wasm' });
    expect(r.headers).toMatchObject({
      'content-type': 'application/wasm',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    expect((await get('/page')).body).toBe('page');
  });

  it('refuses paths out of the folder, symbolic links out of it, malformed escapes, other hosts and writes', async () => {
    expect((await get('/../secret.txt')).status).not.toBe(200);
    expect((await get('/%2e%2e/secret.txt')).status).toBe(403);
    expect((await get('/link.txt')).status).toBe(403);
    expect((await get('/sub/%E0%A4%A')).status).toBe(400);
    expect((await get('/a%00b')).status).toBe(400);
    expect((await get('/index.html', { host: 'evil.example' })).status).toBe(421);
    expect((await get('/index.html', {}, 'PUT')).status).toBe(405);
    expect((await get('/nothing')).status).toBe(404);
    // Still up after all that.
    expect((await get('/index.html')).status).toBe(200);
  });
});
