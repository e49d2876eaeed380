import { createServer, type Server } from 'node:http';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadFromHub, looksLikeHubId, openHfModel, resolveModel } from '../src/index.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

/** A mock of the HuggingFace hub's two endpoints Alki uses, on 127.0.0.1. */
describe('hub download against a local mock hub', () => {
  const model = tinyLlama({ seed: 5, shardTensors: 6 });
  const cache = tempDir('alki-hub-cache-');
  const sha = 'a'.repeat(40);
  const requests: string[] = [];
  let server: Server;
  let endpoint = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '';
      requests.push(url);
      if (req.headers.authorization !== undefined && req.headers.authorization !== 'Bearer good') {
        res.writeHead(401).end();
        return;
      }
      if (url === '/api/models/acme/tiny/revision/main') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sha, siblings: [...readdirSync(model.dir), 'README.md', 'pytorch_model.bin'].map((rfilename) => ({ rfilename })) }));
        return;
      }
      if (url === '/api/models/acme/gated/revision/main') {
        res.writeHead(401).end();
        return;
      }
      const m = url.match(/^\/acme\/tiny\/resolve\/([0-9a-f]+)\/(.+)$/);
      if (m && m[1] === sha && existsSync(join(model.dir, m[2]))) {
        const body = readFileSync(join(model.dir, m[2]));
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address() as { port: number };
    endpoint = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => {
    server?.close();
    model.cleanup();
    cache.cleanup();
  });

  it('recognises hub ids', () => {
    expect(looksLikeHubId('TinyLlama/TinyLlama-1.1B-Chat-v1.0')).toBe(true);
    expect(looksLikeHubId('./models/x')).toBe(false);
    expect(looksLikeHubId('../x/y')).toBe(false);
  });

  it('downloads config, tokenizer and all shards (not .bin), with byte progress, into a commit snapshot', async () => {
    const events: number[] = [];
    const r = await downloadFromHub('acme/tiny', { endpoint, cacheDir: cache.dir, onProgress: (e) => events.push(e.done) });
    expect(r.commitSha).toBe(sha);
    expect(r.dir).toContain(sha);
    const files = readdirSync(r.dir).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(1);
    expect(files).not.toContain('pytorch_model.bin');
    expect(files.some((f) => f.endsWith('.part'))).toBe(false);
    expect(events.length).toBeGreaterThan(0);
    const hf = openHfModel(r.dir);
    expect(hf.config.numLayers).toBe(2);
  });

  it('reuses the cached snapshot without downloading again, and offline', async () => {
    const before = requests.filter((u) => u.includes('/resolve/')).length;
    const r = await resolveModel('acme/tiny', { endpoint, cacheDir: cache.dir });
    expect(r.kind).toBe('hub');
    expect(requests.filter((u) => u.includes('/resolve/')).length).toBe(before);
    const offline = await downloadFromHub('acme/tiny', { endpoint: 'http://127.0.0.1:9', cacheDir: cache.dir });
    expect(offline.commitSha).toBe(sha);
  });

  it('explains 404, gated models and an unreachable hub', async () => {
    await expect(downloadFromHub('acme/missing', { endpoint, cacheDir: cache.dir })).rejects.toThrow(/was not found/);
    await expect(downloadFromHub('acme/gated', { endpoint, cacheDir: cache.dir })).rejects.toThrow(/refused access[\s\S]*/);
    await expect(downloadFromHub('acme/tiny', { endpoint, cacheDir: cache.dir, token: 'bad' })).rejects.toMatchObject({ hint: expect.stringMatching(/HF_TOKEN/) });
    await expect(downloadFromHub('acme/other', { endpoint: 'http://127.0.0.1:9', cacheDir: cache.dir })).rejects.toThrow(/cannot reach the HuggingFace hub/);
  });
});
