import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadFromHub, looksLikeHubId, openHfModel, resolveModel } from '../src/index.js';
import { gitBlobSha1, hubTreeEntry, sha256Hex, tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

const COMMIT = 'c0ffee'.padEnd(40, '0');

/** A repository as the mock hub serves it: files by name, and which are LFS (listed with their sha256). */
interface MockRepo {
  files: Map<string, Buffer>;
  lfs: (name: string) => boolean;
  /** The sha256 the listing claims for a file (default: the true one). */
  claimedSha256?: (name: string) => string | undefined;
  gated?: boolean;
}

/**
 * A mock of the HuggingFace hub on 127.0.0.1 with the real URL layout that @huggingface/hub and huggingface_hub
 * use: /api/models/{id}/revision/{rev}, /api/models/{id}/tree/{rev}, /{id}/resolve/{rev}/{file} (with ranges).
 * `dropOnce` cuts the named file's first full download after half its bytes.
 */
function mockHub(repos: Map<string, MockRepo>) {
  const requests: { url: string; range?: string; auth?: string }[] = [];
  const dropOnce = new Set<string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ url: url.pathname, range: req.headers.range, auth: req.headers.authorization });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    const api = url.pathname.match(/^\/api\/models\/([\w.-]+\/[\w.-]+)\/(revision|tree)\/([^/]+)(?:\/(.+))?$/);
    const resolveM = url.pathname.match(/^\/([\w.-]+\/[\w.-]+)\/resolve\/([^/]+)\/(.+)$/);
    const id = api?.[1] ?? resolveM?.[1];
    const repo = id ? repos.get(id) : undefined;
    if (!repo) return json(404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    if (repo.gated && req.headers.authorization !== 'Bearer hf_granted') {
      return req.headers.authorization
        ? json(403, { error: 'Access to model is restricted' })
        : json(401, { error: 'Access to model is restricted. You must be authenticated.' });
    }
    if (api) {
      const rev = decodeURIComponent(api[3]);
      if (rev !== 'main' && rev !== COMMIT) return json(404, { error: 'Revision not found' }, { 'x-error-code': 'RevisionNotFound' });
      if (api[2] === 'revision')
        return json(200, {
          _id: 'x',
          id,
          sha: COMMIT,
          private: false,
          gated: repo.gated ?? false,
          downloads: 0,
          likes: 0,
          lastModified: '2026-01-01T00:00:00.000Z',
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        });
      // The tree lists one folder: its files and its subfolders.
      const folder = api[4] ? `${api[4]}/` : '';
      const inFolder = [...repo.files].filter(([path]) => path.startsWith(folder) && !path.slice(folder.length).includes('/'));
      const dirs = [
        ...new Set(
          [...repo.files.keys()]
            .filter((p) => p.startsWith(folder) && p.slice(folder.length).includes('/'))
            .map((p) => folder + p.slice(folder.length).split('/')[0]),
        ),
      ];
      return json(200, [
        ...dirs.map((path) => ({ type: 'directory', path, size: 0, oid: gitBlobSha1(Buffer.from(path)) })),
        ...inFolder.map(([path, b]) => hubTreeEntry(path, b, repo.lfs(path), repo.claimedSha256?.(path))),
      ]);
    }
    const [, , rev, name] = resolveM!;
    const body = repo.files.get(name);
    if (rev !== COMMIT || !body) return json(404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
    const etag = `"${repo.lfs(name) ? sha256Hex(body) : gitBlobSha1(body)}"`;
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      const part = body.subarray(start, end + 1);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': part.length, etag, 'accept-ranges': 'bytes' });
      if (dropOnce.has(name) && start === 0 && part.length > 1) {
        dropOnce.delete(name);
        res.write(part.subarray(0, part.length >> 1), () => res.destroy());
        return;
      }
      return res.end(part);
    }
    res.writeHead(200, { 'content-length': body.length, etag });
    if (dropOnce.has(name)) {
      dropOnce.delete(name);
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  };
  return { handle, requests, dropOnce };
}

describe('hub download against a mock hub on 127.0.0.1', () => {
  const model = tinyLlama({ seed: 5, shardTensors: 6 });
  const single = tinyLlama({ seed: 6 });
  const cache = tempDir('alki-hub-cache-');
  const repoOf = (dir: string, extra: Record<string, Buffer> = {}, o: Partial<MockRepo> = {}): MockRepo => ({
    files: new Map([...readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))] as const), ...Object.entries(extra)]),
    lfs: (n) => n.endsWith('.safetensors') || n.endsWith('.bin'),
    ...o,
  });
  const repos = new Map<string, MockRepo>([
    ['acme/tiny', repoOf(model.dir, { 'README.md': Buffer.from('# tiny'), 'pytorch_model.bin': Buffer.from('pickle') })],
    ['acme/single', repoOf(single.dir)],
    ['acme/gated', { ...repoOf(single.dir), gated: true }],
    ['acme/tampered', repoOf(single.dir, {}, { claimedSha256: (n) => (n === 'model.safetensors' ? 'f'.repeat(64) : undefined) })],
    [
      'acme/onnx-only',
      {
        files: new Map([
          ['config.json', readFileSync(join(single.dir, 'config.json'))],
          ['tokenizer.json', readFileSync(join(single.dir, 'tokenizer.json'))],
          ['onnx/model.onnx', Buffer.from('graph')],
          ['onnx/model.onnx_data', Buffer.from('weights')],
          ['onnx/model_q4.onnx', Buffer.from('q4')],
          ['onnx/model_fp16.onnx', Buffer.from('fp16')],
        ]),
        lfs: (n) => n.includes('.onnx'),
      },
    ],
    [
      'acme/pickles',
      {
        files: new Map([
          ['config.json', readFileSync(join(single.dir, 'config.json'))],
          ['pytorch_model.bin', Buffer.from('pickle')],
        ]),
        lfs: (n) => n.endsWith('.bin'),
      },
    ],
  ]);
  const hub = mockHub(repos);
  let server: Server;
  let endpoint = '';
  beforeAll(async () => {
    server = createServer(hub.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server?.close();
    model.cleanup();
    single.cleanup();
    cache.cleanup();
  });
  const resolves = () => hub.requests.filter((r) => r.url.includes('/resolve/')).length;

  it('recognises hub ids', () => {
    expect(looksLikeHubId('TinyLlama/TinyLlama-1.1B-Chat-v1.0')).toBe(true);
    expect(looksLikeHubId('./models/x')).toBe(false);
    expect(looksLikeHubId('../x/y')).toBe(false);
  });

  it('downloads config, tokenizer and all shards (not .bin, not README) into the Hugging Face cache layout', async () => {
    const events: { done: number; total: number; detail?: string }[] = [];
    const r = await downloadFromHub('acme/tiny', { endpoint, hubCache: cache.dir, onProgress: (e) => events.push(e) });
    expect(r.commitSha).toBe(COMMIT);
    const repoDir = join(cache.dir, 'models--acme--tiny');
    expect(r.dir).toBe(join(repoDir, 'snapshots', COMMIT));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const files = readdirSync(r.dir).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(1);
    expect(files).not.toContain('pytorch_model.bin');
    expect(files).not.toContain('README.md');
    // Snapshot entries are relative symlinks to blobs named by their etag: sha256 for LFS files, git sha1 otherwise.
    const shard = files.find((f) => /^model-.*\.safetensors$/.test(f))!;
    expect(lstatSync(join(r.dir, shard)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(r.dir, shard))).toBe(join('..', '..', 'blobs', sha256Hex(repos.get('acme/tiny')!.files.get(shard)!)));
    expect(readlinkSync(join(r.dir, 'config.json'))).toBe(join('..', '..', 'blobs', gitBlobSha1(repos.get('acme/tiny')!.files.get('config.json')!)));
    expect(readdirSync(join(repoDir, 'blobs')).some((f) => f.endsWith('.incomplete'))).toBe(false);
    expect(events.some((e) => e.detail?.includes('MB/s'))).toBe(true);
    expect(openHfModel(r.dir).config.numLayers).toBe(2);
  });

  it('refuses --revision for a local folder or the demo, whose files are used as they are', async () => {
    const count = hub.requests.length;
    await expect(resolveModel(cache.dir, { endpoint, revision: 'v1' })).rejects.toThrow(/--revision picks a commit of a hub model, but ".*" is a local folder/);
    await expect(resolveModel('demo', { endpoint, revision: 'main' })).rejects.toThrow(/--revision picks a commit of a hub model/);
    expect(hub.requests.length).toBe(count);
  });

  it('reuses the cached snapshot without downloading again, and works offline (HF_HUB_OFFLINE, --offline, hub unreachable)', async () => {
    const before = resolves();
    const r = await resolveModel('acme/tiny', { endpoint, hubCache: cache.dir });
    expect(r.kind).toBe('hub');
    expect(resolves()).toBe(before);
    const count = hub.requests.length;
    const offline = await downloadFromHub('acme/tiny', { endpoint, hubCache: cache.dir, offline: true });
    expect(offline.commitSha).toBe(COMMIT);
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect((await downloadFromHub('acme/tiny', { endpoint, hubCache: cache.dir })).dir).toBe(offline.dir);
      await expect(downloadFromHub('acme/single', { endpoint, hubCache: cache.dir })).rejects.toThrow(/offline[\s\S]*not in the hub cache/);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.requests.length).toBe(count);
    expect((await downloadFromHub('acme/tiny', { endpoint: 'http://127.0.0.1:9', hubCache: cache.dir })).commitSha).toBe(COMMIT);
  });

  it('reuses a model Python’s huggingface_hub downloaded (blobs and snapshot links of the same layout)', async () => {
    const py = tempDir('alki-hub-python-');
    try {
      // What `huggingface-cli download acme/single` leaves: blobs by etag, snapshot links, refs/main.
      const repoDir = join(py.dir, 'models--acme--single');
      mkdirSync(join(repoDir, 'blobs'), { recursive: true });
      mkdirSync(join(repoDir, 'snapshots', COMMIT), { recursive: true });
      mkdirSync(join(repoDir, 'refs'));
      writeFileSync(join(repoDir, 'refs', 'main'), COMMIT);
      for (const [name, b] of repos.get('acme/single')!.files) {
        const etag = name.endsWith('.safetensors') ? sha256Hex(b) : gitBlobSha1(b);
        writeFileSync(join(repoDir, 'blobs', etag), b);
        copyFileSync(join(repoDir, 'blobs', etag), join(repoDir, 'snapshots', COMMIT, name));
      }
      const before = resolves();
      const r = await downloadFromHub('acme/single', { endpoint, hubCache: py.dir });
      expect(r.dir).toBe(join(repoDir, 'snapshots', COMMIT));
      expect(resolves()).toBe(before);
    } finally {
      py.cleanup();
    }
  });

  it('resumes a download whose connection dropped mid-file, with a ranged request from where it stopped', async () => {
    const c = tempDir('alki-hub-resume-');
    try {
      hub.dropOnce.add('model.safetensors');
      await expect(downloadFromHub('acme/single', { endpoint, hubCache: c.dir })).rejects.toThrow(/was cut after \d+ of \d+ bytes[\s\S]*/);
      const blobs = join(c.dir, 'models--acme--single', 'blobs');
      const partial = readdirSync(blobs).find((f) => f.endsWith('.incomplete'))!;
      const kept = lstatSync(join(blobs, partial)).size;
      expect(kept).toBeGreaterThan(0);
      const r = await downloadFromHub('acme/single', { endpoint, hubCache: c.dir });
      const last = hub.requests.filter((q) => q.url.endsWith('/model.safetensors')).at(-1)!;
      expect(last.range).toBe(`bytes=${kept}-${repos.get('acme/single')!.files.get('model.safetensors')!.length - 1}`);
      expect(readFileSync(join(r.dir, 'model.safetensors')).equals(repos.get('acme/single')!.files.get('model.safetensors')!)).toBe(true);
      expect(readdirSync(blobs).some((f) => f.endsWith('.incomplete'))).toBe(false);
    } finally {
      c.cleanup();
    }
  });

  it('refuses a file whose bytes do not match the listed sha256, keeping nothing of it', async () => {
    const c = tempDir('alki-hub-sum-');
    try {
      await expect(downloadFromHub('acme/tampered', { endpoint, hubCache: c.dir })).rejects.toThrow(/failed its checksum/);
      const repoDir = join(c.dir, 'models--acme--tampered');
      expect(readdirSync(join(repoDir, 'blobs')).some((f) => f.startsWith('f'.repeat(64)))).toBe(false);
      expect(existsSync(join(repoDir, 'snapshots', COMMIT, 'model.safetensors'))).toBe(false);
      expect(existsSync(join(repoDir, 'refs', 'main'))).toBe(false);
    } finally {
      c.cleanup();
    }
  });

  it('fetches an ONNX-only repository’s float graph and its external data (not the other onnx/ variants)', async () => {
    const r = await downloadFromHub('acme/onnx-only', { endpoint, hubCache: cache.dir });
    expect(readdirSync(join(r.dir, 'onnx')).sort()).toEqual(['model.onnx', 'model.onnx_data']);
    expect(readFileSync(join(r.dir, 'onnx', 'model.onnx_data'), 'utf8')).toBe('weights');
    expect(readdirSync(r.dir).sort()).toEqual(['config.json', 'onnx', 'tokenizer.json']);
  });

  it('explains 401/403 (gated: how to get access), 404, pickle-only repositories, bad tokens and an unreachable hub', async () => {
    await expect(downloadFromHub('acme/missing', { endpoint, hubCache: cache.dir })).rejects.toThrow(/was not found/);
    await expect(downloadFromHub('acme/single', { endpoint, hubCache: cache.dir, revision: 'v9' })).rejects.toThrow(/revision v9\) was not found/);
    await expect(downloadFromHub('acme/gated', { endpoint, hubCache: cache.dir })).rejects.toMatchObject({
      message: expect.stringMatching(/refused access.*401/),
      hint: expect.stringMatching(/accept its conditions[\s\S]*HF_TOKEN/),
    });
    await expect(downloadFromHub('acme/gated', { endpoint, hubCache: cache.dir, token: 'hf_other' })).rejects.toMatchObject({
      message: expect.stringMatching(/403/),
      hint: expect.stringMatching(/accept its conditions/),
    });
    const granted = await downloadFromHub('acme/gated', { endpoint, hubCache: cache.dir, token: 'hf_granted' });
    expect(granted.commitSha).toBe(COMMIT);
    expect(hub.requests.filter((q) => q.url.startsWith('/acme/gated/resolve/')).every((q) => q.auth === 'Bearer hf_granted')).toBe(true);
    await expect(downloadFromHub('acme/single', { endpoint, hubCache: cache.dir, token: 'not-a-token' })).rejects.toThrow(/start with "hf_"/);
    await expect(downloadFromHub('acme/pickles', { endpoint, hubCache: cache.dir })).rejects.toThrow(/only pickle checkpoints/);
    await expect(downloadFromHub('acme/other', { endpoint: 'http://127.0.0.1:9', hubCache: cache.dir })).rejects.toThrow(/cannot reach the HuggingFace hub/);
  });
});
