// The hostile-input corpus (docs/threat-model.md): bad files, bad flags, a bad hub, interrupts. Each case asserts
// its exit code, a one-paragraph message with a hint (no stack trace, no native dump), and that nothing outside the
// output folder and Alki's cache was written or deleted.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alki } from './helpers.js';
import { changes, cleanupWorlds, editJson, newWorld, patchTensor, runCli, snapshot, type RunResult, type World } from './hostile-helpers.js';
import { hubTreeEntry, tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

afterAll(() => {
  cleanupWorlds();
  bundles.cleanup();
  other.cleanup();
});

interface Case {
  name: string;
  args: (w: World) => string[];
  setup?: (w: World) => void;
  env?: (w: World) => Record<string, string>;
  stdin?: string | Buffer;
  status: number;
  message: RegExp;
  /** Folders the command may write besides Alki's cache (default: cwd/out). */
  out?: (w: World) => string[];
  after?: (w: World, r: RunResult) => void;
  timeoutMs?: number;
}

const bundles = tempDir('alki-hostile-bundles-');
const other = tinyLlama({ seed: 3, vocabSize: 400 });
let hub = '';
let server: Server;
const sha = 'c'.repeat(40);

/** A bundle built once, copied into a world as cwd/<name>. */
function bundle(w: World, name: 'rtn4' | 'fp32' | 'other' = 'rtn4'): string {
  const dest = join(w.cwd, name);
  cpSync(join(bundles.dir, name), dest, { recursive: true });
  return dest;
}
const out = (w: World) => join(w.cwd, 'out');
const model = (w: World) => w.model;
const st = (w: World) => join(w.model, 'model.safetensors');
const cfg = (w: World) => join(w.model, 'config.json');

const cases: Case[] = [
  // 1. --force and --out never delete what is not a bundle, nor the source, nor the current folder.
  {
    name: '--force over a folder of user files',
    setup: (w) => (mkdirSync(out(w)), writeFileSync(join(out(w), 'thesis.txt'), 'mine')),
    args: (w) => ['build', model(w), '--out', out(w), '--force'],
    status: 2,
    message: /exists and is not an Alki bundle, so --force will not replace it/,
    after: (w) => expect(readFileSync(join(out(w), 'thesis.txt'), 'utf8')).toBe('mine'),
  },
  { name: '--out ""', args: (w) => ['build', model(w), '--out', '', '--force'], status: 2, message: /the output folder is empty/ },
  {
    name: '--out . (the current folder) with --force',
    setup: (w) => writeFileSync(join(w.cwd, 'keep.txt'), 'x'),
    args: (w) => ['build', model(w), '--out', '.', '--force'],
    status: 2,
    message: /is the current folder: writing there would replace it/,
  },
  {
    name: '--out .. (a parent of the current folder)',
    args: (w) => ['build', model(w), '--out', '..', '--force'],
    status: 2,
    message: /is a parent of the current folder/,
  },
  {
    name: '--out = the source model folder with --force',
    args: (w) => ['build', model(w), '--out', model(w), '--force'],
    status: 2,
    message: /writing there would replace it/,
    after: (w) => expect(existsSync(st(w))).toBe(true),
  },
  { name: '--out = a parent of the source model folder', args: (w) => ['build', model(w), '--out', w.root, '--force'], status: 2, message: /is a parent of/ },
  {
    name: '--out is a regular file, with --force',
    setup: (w) => writeFileSync(out(w), 'a file'),
    args: (w) => ['build', model(w), '--out', out(w), '--force'],
    status: 2,
    message: /is not an Alki bundle/,
    after: (w) => expect(readFileSync(out(w), 'utf8')).toBe('a file'),
  },
  {
    name: '--out is an existing bundle, without --force',
    setup: (w) => cpSync(join(bundles.dir, 'rtn4'), out(w), { recursive: true }),
    args: (w) => ['build', model(w), '--out', out(w)],
    status: 2,
    message: /already exists/,
  },
  {
    name: '--out has a damaged alki.json, with --force',
    setup: (w) => (mkdirSync(out(w)), writeFileSync(join(out(w), 'alki.json'), '{"schemaVersion": 1')),
    args: (w) => ['build', model(w), '--out', out(w), '--force'],
    status: 2,
    message: /alki\.json that Alki cannot read/,
  },
  {
    name: '--out is a symlink to a folder, with --force',
    setup: (w) => (mkdirSync(join(w.cwd, 'real')), writeFileSync(join(w.cwd, 'real', 'x'), 'y'), symlinkSync(join(w.cwd, 'real'), out(w))),
    args: (w) => ['build', model(w), '--out', out(w), '--force'],
    status: 2,
    message: /is not an Alki bundle/,
  },
  {
    name: '--out under /proc (mkdir would loop forever)',
    args: (w) => ['build', model(w), '--out', '/proc/alki-x/y'],
    status: 1,
    message: /creating \/proc\/alki-x/,
    timeoutMs: 30_000,
  },
  {
    name: 'compare --out holding user files',
    setup: (w) => (mkdirSync(out(w)), writeFileSync(join(out(w), 'notes.md'), 'mine')),
    args: (w) => ['compare', model(w), '--methods', 'rtn4', '--metrics', 'size', '--out', out(w)],
    status: 2,
    message: /holds files a comparison did not write \(notes\.md\)/,
  },
  {
    name: 'compare --out . (the current folder)',
    args: (w) => ['compare', model(w), '--methods', 'rtn4', '--metrics', 'size', '--out', '.'],
    status: 2,
    message: /is the current folder/,
  },

  // 2. A hub or mirror cannot steer writes out of the cache, hang the build, or crash it.
  {
    name: 'hub: a commit sha that is a path',
    args: () => ['build', 'evil/sha', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /carries no valid commit sha/,
  },
  {
    name: 'hub: no sha and a --revision that leaves the folder',
    args: () => ['build', 'evil/nosha', '--revision', '../../../x', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 2,
    message: /--revision "\.\.\/\.\.\/\.\.\/x" is not a branch, tag or commit name/,
  },
  {
    name: 'hub: no sha and a branch name',
    args: () => ['build', 'evil/nosha', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /carries no valid commit sha/,
  },
  {
    name: 'hub: --revision with a slash run',
    args: () => ['build', 'evil/nosha', '--revision', 'a//b', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 2,
    message: /is not a branch, tag or commit name/,
  },
  {
    name: 'hub: an HTML page instead of the API',
    args: () => ['build', 'evil/html', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /did not answer with the hub's JSON/,
  },
  { name: 'hub: 401 (gated)', args: () => ['build', 'evil/gated', '--out', 'out'], env: () => ({ HF_ENDPOINT: hub }), status: 1, message: /refused access/ },
  { name: 'hub: 404', args: () => ['build', 'evil/missing', '--out', 'out'], env: () => ({ HF_ENDPOINT: hub }), status: 1, message: /was not found/ },
  {
    name: 'hub: a mirror that accepts and never answers',
    args: () => ['build', 'evil/hang', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub, ALKI_HUB_TIMEOUT_MS: '1500' }),
    status: 1,
    message: /no answer within 1\.5 s/,
    timeoutMs: 30_000,
  },
  {
    name: 'hub: a download cut mid-file',
    args: () => ['build', 'evil/cut', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /(was cut after|stopped at) \d+/,
    after: (w) => {
      // The partial blob stays for the next run to resume (as huggingface_hub does); no snapshot entry points at it.
      const files = readdirSync(w.cache, { recursive: true }).map(String);
      expect(files.some((f) => f.endsWith('.incomplete'))).toBe(true);
      expect(files.some((f) => f.endsWith(join('snapshots', sha, 'model.safetensors')))).toBe(false);
    },
  },
  {
    name: 'hub: a download that stalls',
    args: () => ['build', 'evil/stall', '--out', 'out'],
    // The same timeout bounds the metadata answers before the stall: 4 s was too short for them once, with the
    // other cases' processes loading both cores of a CI machine.
    env: () => ({ HF_ENDPOINT: hub, ALKI_HUB_TIMEOUT_MS: '10000' }),
    status: 1,
    message: /stalled: no data for 10 s/,
    timeoutMs: 60_000,
  },
  {
    name: 'hub: weight_map values that are not strings',
    args: () => ['build', 'evil/badmap', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /no usable weight_map/,
  },
  {
    name: 'hub: a shard path that leaves the snapshot',
    args: () => ['build', 'evil/traverse', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /no usable weight_map/,
  },
  {
    name: 'hub: HF_ENDPOINT that is not a URL',
    args: () => ['build', 'evil/sha', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: 'file:///etc' }),
    status: 2,
    message: /is not an http\(s\) URL/,
  },
  {
    name: 'hub: unreachable',
    args: () => ['build', 'evil/sha', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: 'http://127.0.0.1:9' }),
    status: 1,
    message: /cannot reach the HuggingFace hub/,
  },

  // 3. Prompts: never on a command line onnxruntime cannot survive, never silently dropped.
  {
    name: 'a 34,000-character --prompt',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt', 'a'.repeat(34_000)],
    status: 2,
    message: /the command line is [\d,]+ bytes long/,
  },
  {
    name: 'a prompt longer than the context, from a file',
    setup: (w) => (bundle(w), writeFileSync(join(w.cwd, 'long.txt'), 'the cat sat on the mat '.repeat(400))),
    args: () => ['run', 'rtn4', '--prompt-file', 'long.txt'],
    status: 1,
    message: /the prompt is \d+ tokens long, more than the model's context of \d+/,
  },
  {
    name: 'a prompt longer than the context, on stdin',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt-file', '-'],
    stdin: 'the dog ran '.repeat(600),
    status: 1,
    message: /more than the model's context/,
  },
  {
    name: '--prompt-file that does not exist',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt-file', 'nope.txt'],
    status: 1,
    message: /prompt file not found: nope\.txt/,
  },
  {
    name: '--prompt-file that is a folder',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt-file', '.'],
    status: 1,
    message: /is not a regular file/,
  },
  {
    name: '--prompt-file with binary bytes',
    setup: (w) => (bundle(w), writeFileSync(join(w.cwd, 'bin'), Buffer.from([0, 159, 146, 150, 0, 255]))),
    args: () => ['run', 'rtn4', '--prompt-file', 'bin'],
    status: 1,
    message: /is not UTF-8 text/,
  },
  {
    name: '--prompt and --prompt-file together',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt', 'x', '--prompt-file', 'y'],
    status: 2,
    message: /--prompt and --prompt-file were both given/,
  },

  // 5. Damaged weights stop the build before a bundle exists.
  {
    name: 'NaN in a linear weight, --quantize none',
    setup: (w) => patchTensor(st(w), 'model.layers.0.mlp.up_proj.weight', (d) => (d[7] = NaN)),
    args: (w) => ['build', model(w), '--quantize', 'none', '--out', 'out'],
    status: 1,
    message: /weight "model\.layers\.0\.mlp\.up_proj\.weight" contains NaN/,
  },
  {
    name: 'Inf in the embedding table',
    setup: (w) => patchTensor(st(w), 'model.embed_tokens.weight', (d) => (d[3] = Infinity)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /weight "model\.embed_tokens\.weight" contains \+Inf/,
  },
  {
    name: 'NaN in a norm weight',
    setup: (w) => patchTensor(st(w), 'model.layers.1.input_layernorm.weight', (d) => (d[0] = NaN)),
    args: (w) => ['build', model(w), '--quantize', 'none', '--out', 'out'],
    status: 1,
    message: /input_layernorm\.weight" contains NaN/,
  },
  {
    name: '3e38 values (finite, overflow in the graph)',
    setup: (w) => patchTensor(st(w), 'model.layers.0.self_attn.v_proj.weight', (d) => d.fill(3e38)),
    args: (w) => ['build', model(w), '--quantize', 'none', '--out', 'out'],
    status: 1,
    message: /computes (NaN|infinite) logits/,
  },
  {
    name: 'a safetensors header length off by 2 (data shifted)',
    setup: (w) => {
      const b = readFileSync(st(w));
      b.writeBigUInt64LE(b.readBigUInt64LE(0) + 2n, 0);
      writeFileSync(st(w), b);
    },
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /safetensors|header|logits/,
  },
  {
    name: 'a truncated safetensors file',
    setup: (w) => truncateSync(st(w), 5000),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /safetensors/,
  },
  {
    name: 'a folder with only a pickle checkpoint',
    setup: (w) => (rmSync(st(w)), writeFileSync(join(model(w), 'pytorch_model.bin'), 'PK\u0003\u0004 pickle')),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /only pickle checkpoints \(pytorch_model\.bin\).*unpickling runs arbitrary code/s,
  },
  {
    name: 'hub: a pickle-only repository',
    args: () => ['build', 'evil/pickle', '--out', 'out'],
    env: () => ({ HF_ENDPOINT: hub }),
    status: 1,
    message: /evil\/pickle has only pickle checkpoints on the hub \(pytorch_model\.bin\).*safetensors revision/s,
  },
  {
    name: 'random bytes as model.safetensors',
    setup: (w) => writeFileSync(st(w), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255))),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /safetensors/,
  },
  {
    name: 'a 0-byte model.safetensors',
    setup: (w) => writeFileSync(st(w), ''),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /safetensors/,
  },

  // 6. The tokenizer is checked at build time, and ids never reach onnxruntime out of range.
  {
    name: 'a truncated tokenizer.json',
    setup: (w) => truncateSync(join(w.model, 'tokenizer.json'), 200),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /tokenizer/i,
  },
  {
    name: 'tokenizer.json that is not JSON',
    setup: (w) => writeFileSync(join(w.model, 'tokenizer.json'), 'vocab: a b c'),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /tokenizer/i,
  },
  {
    name: 'no tokenizer.json',
    setup: (w) => rmSync(join(w.model, 'tokenizer.json')),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /has no tokenizer\.json/,
  },
  {
    name: 'a tokenizer larger than the vocabulary',
    setup: (w) => editJson(cfg(w), (j) => (j.vocab_size = 200)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /tokens but config\.json's vocab_size is 200|shape/,
  },
  {
    name: 'run --stop-token-ids outside the vocabulary',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', '2', '--stop-token-ids', '99999'],
    status: 2,
    message: /stop token id 99999 is not a token of this model/,
  },

  // 7. Configs that pass a type check but would break the bundle.
  {
    name: 'rms_norm_eps 1 (integral)',
    setup: (w) => editJson(cfg(w), (j) => (j.rms_norm_eps = 1)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"rms_norm_eps" is 1; a normalization epsilon is a small positive number/,
  },
  {
    name: 'rms_norm_eps -5',
    setup: (w) => editJson(cfg(w), (j) => (j.rms_norm_eps = -5)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"rms_norm_eps" must be a positive number, got -5/,
  },
  {
    name: 'rope_theta 0',
    setup: (w) => editJson(cfg(w), (j) => (j.rope_theta = 0)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"rope_theta" must be a positive number, got 0/,
  },
  {
    name: 'rope_theta -10000',
    setup: (w) => editJson(cfg(w), (j) => (j.rope_theta = -10000)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"rope_theta" must be a positive number/,
  },
  {
    name: 'num_hidden_layers smaller than the checkpoint',
    setup: (w) => editJson(cfg(w), (j) => (j.num_hidden_layers = 1)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /has 2 decoder layers but config\.json says num_hidden_layers 1/,
  },
  {
    name: 'num_hidden_layers larger than the checkpoint',
    setup: (w) => editJson(cfg(w), (j) => (j.num_hidden_layers = 5)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /has 2 decoder layers but config\.json says num_hidden_layers 5/,
  },
  {
    name: 'bos_token_id outside the vocabulary',
    setup: (w) => editJson(cfg(w), (j) => (j.bos_token_id = 100000)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"bos_token_id" 100000 is not a token id/,
  },
  {
    name: 'a negative eos_token_id',
    setup: (w) => editJson(cfg(w), (j) => (j.eos_token_id = [2, -1])),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"eos_token_id" -1 is not a token id/,
  },
  {
    name: 'vocab_size 10^9',
    setup: (w) => editJson(cfg(w), (j) => (j.vocab_size = 1e9)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"vocab_size" is 1000000000, more than/,
  },
  {
    name: 'max_position_embeddings 10^9',
    setup: (w) => editJson(cfg(w), (j) => (j.max_position_embeddings = 1e9)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"max_position_embeddings" is 1000000000, more than/,
  },
  {
    name: 'model_type mamba',
    setup: (w) => editJson(cfg(w), (j) => (j.model_type = 'mamba')),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /model_type "mamba" is not supported/,
  },
  {
    name: 'config.json that is not JSON',
    setup: (w) => writeFileSync(cfg(w), '{ "model_type": '),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /config\.json is not valid JSON/,
  },
  {
    name: 'config.json that is an array',
    setup: (w) => writeFileSync(cfg(w), '[1, 2]'),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /config\.json is not valid JSON \(not an object\)/,
  },
  {
    name: 'hidden_size as a string',
    setup: (w) => editJson(cfg(w), (j) => (j.hidden_size = '64')),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /"hidden_size" must be a positive integer, got "64"/,
  },
  {
    name: 'hidden_size not divisible by the heads',
    setup: (w) => editJson(cfg(w), (j) => (j.num_attention_heads = 5)),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /not divisible by num_attention_heads 5/,
  },

  // 8. Nothing hangs: pipes and devices as inputs, special filesystems as outputs.
  {
    name: 'config.json is a FIFO',
    setup: (w) => (rmSync(cfg(w)), execFileSync('mkfifo', [cfg(w)])),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /config\.json \(.*\) is not a regular file/,
    timeoutMs: 30_000,
  },
  {
    name: 'config.json is a link to /dev/urandom',
    setup: (w) => (rmSync(cfg(w)), symlinkSync('/dev/urandom', cfg(w))),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /is not a regular file/,
    timeoutMs: 30_000,
  },
  {
    name: 'HF_HUB_CACHE under /proc',
    args: () => ['build', 'evil/cut', '--out', 'out'],
    env: () => ({ HF_HUB_CACHE: '/proc/hf-cache', HF_ENDPOINT: hub }),
    status: 1,
    message: /creating \/proc\/hf-cache/,
    timeoutMs: 30_000,
  },
  {
    name: '--calib is a FIFO',
    setup: (w) => execFileSync('mkfifo', [join(w.cwd, 'calib.txt')]),
    args: (w) => ['build', model(w), '--quantize', 'gptq', '--calib', 'calib.txt', '--out', 'out'],
    status: 1,
    message: /not a regular file|not text/,
    timeoutMs: 30_000,
  },
  {
    name: '--text is /dev/urandom',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'perplexity', '--text', '/dev/urandom'],
    status: 1,
    message: /not a regular file|not text/,
    timeoutMs: 30_000,
  },

  // 9. Nonsense is refused, not measured.
  {
    name: 'bench --baseline of another model',
    setup: (w) => (bundle(w), bundle(w, 'other')),
    args: () => ['bench', 'rtn4', '--baseline', 'other', '--metrics', 'perplexity', '--max-windows', '1', '--context', '16'],
    status: 1,
    message: /vocabulary and the baseline .* one of|different tokenizers/,
    env: () => ({}),
  },
  {
    name: 'random bytes as --text',
    setup: (w) => (bundle(w), writeFileSync(join(w.cwd, 'r.txt'), Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7919 + 13) & 255)))),
    args: () => ['bench', 'rtn4', '--metrics', 'perplexity', '--text', 'r.txt'],
    status: 1,
    message: /not (UTF-8 )?text/,
  },
  {
    name: 'random bytes as --calib',
    setup: (w) => writeFileSync(join(w.cwd, 'c.txt'), Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7919 + 13) & 255))),
    args: (w) => ['build', model(w), '--quantize', 'gptq', '--calib', 'c.txt', '--out', 'out'],
    status: 1,
    message: /not (UTF-8 )?text/,
  },
  {
    name: '--max-windows 0',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'perplexity', '--max-windows', '0', '--text', 'x'],
    status: 2,
    message: /--max-windows must be a whole number ≥ 1, got 0/,
  },
  {
    name: '--runs 0',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'speed', '--runs', '0'],
    status: 2,
    message: /--runs must be a whole number from 1 to 1000, got 0/,
  },
  {
    name: 'run -n -1',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', '-1'],
    status: 2,
    message: /new tokens must be a whole number ≥ 1, got -1/,
  },
  {
    name: 'run refused after its options are read: nothing on stdout (no echoed prompt)',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt', 'Once upon a time', '-n', '0'],
    status: 2,
    message: /new tokens must be a whole number ≥ 1, got 0/,
    after: (_, r) => expect(r.stdout).toBe(''),
  },
  {
    name: 'a flag given twice keeps its last value (--prompt twice, then -n 5 -n -1)',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--prompt', 'a', '--prompt', 'b', '-n', '5', '-n', '-1'],
    status: 2,
    message: /new tokens must be a whole number ≥ 1, got -1\n/,
  },
  {
    name: '--block-size given twice: the last one is checked',
    args: (w) => ['build', model(w), '--quantize', 'rtn', '--block-size', '32', '--block-size', '48', '--out', out(w)],
    status: 2,
    message: /--block-size 48 is not supported/,
  },
  { name: '--block-size abc', args: (w) => ['build', model(w), '--block-size', 'abc', '--out', out(w)], status: 2, message: /--block-size must be a number/ },
  {
    name: '--calib with --quantize rtn (nothing to calibrate)',
    setup: (w) => writeFileSync(join(w.cwd, 'calib.txt'), 'Once upon a time. '.repeat(200)),
    args: (w) => ['build', model(w), '--quantize', 'rtn', '--calib', 'calib.txt', '--quick', '--out', out(w)],
    status: 2,
    message: /RTN needs no calibration: --calib, --quick apply to AWQ, GPTQ and SmoothQuant only/,
  },
  {
    name: '--calib with --quantize smoothquant --no-smooth (the naive baseline calibrates nothing)',
    setup: (w) => writeFileSync(join(w.cwd, 'calib.txt'), 'Once upon a time. '.repeat(200)),
    args: (w) => ['build', model(w), '--quantize', 'smoothquant', '--no-smooth', '--calib', 'calib.txt', '--alpha', '0.7', '--out', out(w)],
    status: 2,
    message: /--no-smooth builds the naive W8A8 model, which needs no calibration: --calib, --alpha apply to smoothing only/,
  },
  {
    name: '--revision with a local folder (its files are used as they are)',
    args: (w) => ['build', model(w), '--quantize', 'rtn', '--revision', 'v1', '--out', out(w)],
    status: 2,
    message: /--revision picks a commit of a hub model, but ".*" is a local folder/,
  },
  {
    name: '--resume with --quantize rtn (nothing recorded to resume)',
    args: (w) => ['build', model(w), '--quantize', 'rtn', '--resume', '--out', out(w)],
    status: 2,
    message: /--resume continues AWQ and GPTQ builds \(they record each finished layer\), not rtn/,
  },
  {
    name: '--block-size with --quantize none',
    args: (w) => ['build', model(w), '--quantize', 'none', '--block-size', '64', '--out', out(w)],
    status: 2,
    message: /--quantize none keeps the model in float32: --block-size does not apply/,
  },
  {
    name: '--force over a bundle that also holds the user’s files',
    setup: (w) => (cpSync(join(bundles.dir, 'rtn4'), out(w), { recursive: true }), writeFileSync(join(out(w), 'notes.md'), 'mine')),
    args: (w) => ['build', model(w), '--quantize', 'rtn', '--out', out(w), '--force'],
    status: 2,
    message: /also holds files it did not write \(notes\.md\), so --force will not replace it/,
    after: (w) => expect(readFileSync(join(out(w), 'notes.md'), 'utf8')).toBe('mine'),
  },
  {
    name: 'info (without --verify) on a bundle whose graph was truncated',
    setup: (w) => {
      const dir = join(bundle(w), 'onnx');
      truncateSync(
        join(
          dir,
          readdirSync(dir).find((f) => f.endsWith('.onnx'))!,
        ),
        100,
      );
    },
    args: () => ['info', 'rtn4'],
    status: 1,
    message: /is incomplete or damaged: onnx\/model\w*\.onnx has 100 bytes/,
  },
  {
    name: 'run -n abc',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', 'abc'],
    status: 2,
    message: /new tokens must be a whole number ≥ 1, got NaN/,
  },
  {
    name: 'run --seed abc',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', '2', '--seed', 'abc'],
    status: 2,
    message: /the seed must be a whole number, got NaN/,
  },
  {
    name: 'run --stop-token-ids foo',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', '2', '--stop-token-ids', 'foo'],
    status: 2,
    message: /stop token id NaN is not a token/,
  },
  {
    name: '--max-ppl-increase without --benchmark',
    args: (w) => ['build', model(w), '--max-ppl-increase', '5', '--out', 'out'],
    status: 2,
    message: /--max-ppl-increase only applies with --benchmark/,
  },
  {
    name: 'run --threads -3',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '-n', '2', '--threads', '-3'],
    status: 2,
    message: /threads must be a whole number from 1 to 1024, got -3/,
  },
  {
    name: 'bench --context 4096 beyond the model',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'perplexity', '--context', '4096', '--text', 'x'],
    status: 2,
    message: /--context must be a whole number from 2 to \d+, got 4096/,
  },
  {
    name: 'run --temperature -1',
    setup: (w) => void bundle(w),
    args: () => ['run', 'rtn4', '--temperature', '-1'],
    status: 2,
    message: /temperature must be ≥ 0/,
  },
  { name: 'run --top-p 2', setup: (w) => void bundle(w), args: () => ['run', 'rtn4', '--top-p', '2'], status: 2, message: /top-p must be in \(0, 1\]/ },
  {
    name: 'build --block-size 48',
    args: (w) => ['build', model(w), '--block-size', '48', '--out', 'out'],
    status: 2,
    message: /--block-size 48 is not supported/,
  },
  { name: 'build --bits 3', args: (w) => ['build', model(w), '--bits', '3', '--out', 'out'], status: 2, message: /--bits 3 is not supported/ },
  { name: 'an unknown flag', args: (w) => ['build', model(w), '--quantise', 'rtn'], status: 2, message: /Unknown argument: quantise/ },
  { name: 'bench --metrics foo', setup: (w) => void bundle(w), args: () => ['bench', 'rtn4', '--metrics', 'foo'], status: 2, message: /unknown metric "foo"/ },
  {
    name: 'build --quantize gptq --alpha 0.5',
    args: (w) => ['build', model(w), '--quantize', 'gptq', '--alpha', '0.5', '--out', 'out'],
    status: 2,
    message: /--alpha applies to SmoothQuant only/,
  },
  {
    name: 'build --w8a8-format s8 with RTN',
    args: (w) => ['build', model(w), '--w8a8-format', 's8', '--out', 'out'],
    status: 2,
    message: /applies to SmoothQuant \(W8A8\) only/,
  },

  // 10. Internal and native errors never reach the user raw.
  {
    name: 'the model is a file',
    setup: (w) => writeFileSync(join(w.cwd, 'm.bin'), 'x'),
    args: () => ['build', 'm.bin', '--out', 'out'],
    status: 1,
    message: /is a file, not a model folder/,
  },
  {
    name: 'tokenizer.json is a folder (EISDIR)',
    setup: (w) => (rmSync(join(w.model, 'tokenizer.json')), mkdirSync(join(w.model, 'tokenizer.json'))),
    args: (w) => ['build', model(w), '--out', 'out'],
    status: 1,
    message: /tokenizer/i,
  },
  {
    name: 'a 0-byte model_q4.onnx in a bundle',
    setup: (w) => writeFileSync(join(bundle(w), 'onnx', 'model_q4.onnx'), ''),
    args: () => ['run', 'rtn4', '-n', '2'],
    status: 1,
    message: /onnx\/model_q4\.onnx has 0 bytes, alki\.json says \d+/,
  },
  {
    name: 'a bundle missing a file',
    setup: (w) => rmSync(join(bundle(w), 'tokenizer.json')),
    args: () => ['run', 'rtn4', '-n', '2'],
    status: 1,
    message: /tokenizer\.json is missing/,
  },
  {
    name: 'bench --report into a missing folder',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'size', '--report', 'nope/r.html'],
    status: 2,
    message: /--report nope\/r\.html cannot be written/,
  },
  {
    name: 'bench --report that is a folder',
    setup: (w) => void bundle(w),
    args: () => ['bench', 'rtn4', '--metrics', 'size', '--report', '.'],
    status: 2,
    message: /--report \. is a folder or a device/,
  },
  {
    name: 'info --verify --json on a damaged bundle: one document',
    setup: (w) => appendFileSync(join(bundle(w), 'README.md'), 'x'),
    args: () => ['info', 'rtn4', '--verify', '--json'],
    status: 1,
    message: /failed verification: README\.md \(size\)/,
  },
  {
    name: 'alki.json with a path that leaves the bundle',
    setup: (w) => editJson(join(bundle(w), 'alki.json'), (j) => ((j.files as { path: string }[])[0].path = '../../etc/passwd')),
    args: () => ['info', 'rtn4'],
    status: 1,
    message: /inside the bundle|outside the bundle/,
  },
  {
    name: 'alki.json that is not JSON',
    setup: (w) => writeFileSync(join(bundle(w), 'alki.json'), '{'),
    args: () => ['run', 'rtn4'],
    status: 1,
    message: /alki\.json is not valid JSON/,
  },
  {
    name: 'run on a folder that is not a bundle',
    setup: (w) => mkdirSync(join(w.cwd, 'empty')),
    args: () => ['run', 'empty'],
    status: 1,
    message: /has no alki\.json, so it is not an Alki bundle/,
  },
  {
    name: 'run on a bundle whose tokenizer was swapped for a larger one',
    setup: (w) => {
      const b = bundle(w);
      cpSync(join(bundles.dir, 'fp32', 'tokenizer.json'), join(b, 'tokenizer.json'));
      editJson(join(b, 'tokenizer.json'), (j) => ((j.model as { vocab: Record<string, number> }).vocab['zzzz-extra'] = 99999));
    },
    args: () => ['run', 'rtn4'],
    status: 1,
    message: /tokenizer\.json has \d+ bytes, alki\.json says/,
  },
];

function checkParagraph(r: RunResult, json: boolean): void {
  const text = json ? r.stdout : r.stderr;
  expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // no stack trace
  expect(text).not.toMatch(/onnxruntime::|\/onnxruntime_src\/|Segmentation|core dumped|this is a bug in Alki/);
  if (json) {
    const docs = r.stdout.trim();
    const parsed = JSON.parse(docs); // exactly one document
    expect(parsed.error.hint, 'a hint').toBeTruthy();
    return;
  }
  // The last two lines are the paragraph: "error: …" and "  hint: …".
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !/^warning: /.test(l));
  const [error, hint] = lines.slice(-2);
  expect(error, r.stderr).toMatch(/^error: \S/);
  expect(hint, r.stderr).toMatch(/^ {2}hint: \S/);
}

describe('hostile input: every bad input or fault gets a clear error and changes nothing outside the output', () => {
  beforeAll(async () => {
    const pristine = tinyLlama({ seed: 17 });
    for (const [name, dir, args] of [
      ['rtn4', pristine.dir, []],
      ['fp32', pristine.dir, ['--quantize', 'none']],
      ['other', other.dir, []],
    ] as const) {
      const r = alki(['build', dir, ...args, '--out', join(bundles.dir, name), '--quiet']);
      if (r.status !== 0) throw new Error(`building ${name}: ${r.stderr}`);
    }
    pristine.cleanup();
    server = createServer((req, res) => mockHub(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hub = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server?.closeAllConnections?.();
    server?.close();
  });

  it(`the corpus has at least 80 cases (${cases.length})`, () => expect(cases.length).toBeGreaterThanOrEqual(80));

  it.concurrent.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const w = newWorld();
    c.setup?.(w);
    const allowed = [w.cache, ...(c.out?.(w) ?? [out(w)])];
    const before = snapshot(w.root, allowed);
    const json = c.args(w).includes('--json');
    const args = json || c.args(w).includes('--quiet') ? c.args(w) : [...c.args(w), '--quiet'];
    const r = await runCli(args, {
      cwd: w.cwd,
      env: { HOME: w.home, ALKI_CACHE: w.cache, HF_HUB_CACHE: join(w.cache, 'huggingface'), HF_ENDPOINT: 'http://127.0.0.1:9', ...c.env?.(w) },
      stdin: c.stdin,
      timeoutMs: c.timeoutMs ?? 90_000,
    });
    expect(r.signal, `killed after ${r.ms} ms (a hang?)\n${r.stderr}`).toBeNull();
    expect(r.status, r.stderr + r.stdout).toBe(c.status);
    expect(json ? r.stdout : r.stderr, r.stderr).toMatch(c.message);
    checkParagraph(r, json);
    expect(changes(before, snapshot(w.root, allowed)), 'written or deleted outside the output folder and the cache').toEqual([]);
    c.after?.(w, r);
  });
});

/** The mock hub's misbehaviours, one per model id, in the hub's URL layout (revision, tree, resolve with ranges). */
function mockHub(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): unknown {
  const url = req.url ?? '';
  const send = (body: string | Buffer, type = 'application/json') =>
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
  const config = JSON.stringify({
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 300,
  });
  const files = (id: string): Record<string, Buffer> => {
    const base = { 'config.json': Buffer.from(config), 'tokenizer.json': Buffer.from('{}') };
    if (id === 'pickle') return { ...base, 'pytorch_model.bin': Buffer.from('pickle') };
    if (id === 'badmap' || id === 'traverse')
      return {
        ...base,
        'model.safetensors.index.json': Buffer.from(JSON.stringify({ weight_map: id === 'badmap' ? { a: 5 } : { a: '../../../escape.safetensors' } })),
      };
    return { ...base, 'model.safetensors': Buffer.alloc(100_000) };
  };
  const m = /^\/api\/models\/evil\/([\w-]+)\/(revision|tree)\/([^?]+)/.exec(url);
  if (m) {
    const [, id, kind] = m;
    if (id === 'sha') return send(JSON.stringify({ sha: '../../../../tmp/alki-evil' }));
    if (id === 'nosha') return send(JSON.stringify({ id: 'evil/nosha' }));
    if (id === 'html') return send('<!doctype html><html><body>Welcome to our mirror</body></html>', 'text/html');
    if (id === 'gated') return void res.writeHead(401).end();
    if (id === 'hang') return; // accepted, never answered
    if (!['cut', 'stall', 'pickle', 'badmap', 'traverse'].includes(id)) return void res.writeHead(404).end();
    if (kind === 'revision') return send(JSON.stringify({ id: `evil/${id}`, sha }));
    return send(JSON.stringify(Object.entries(files(id)).map(([path, b]) => hubTreeEntry(path, b, path.endsWith('.safetensors') || path.endsWith('.bin')))));
  }
  const f = /^\/evil\/([\w-]+)\/resolve\/[0-9a-f]{40}\/(.+)$/.exec(url);
  const body = f && files(f[1])[f[2]];
  if (!f || !body) return void res.writeHead(404).end();
  const [, id, name] = f;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  const end = range?.[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
  const part = body.subarray(start, end + 1);
  res.writeHead(range ? 206 : 200, {
    'content-length': part.length,
    etag: '"x"',
    ...(range ? { 'content-range': `bytes ${start}-${end}/${body.length}` } : {}),
  });
  if (name !== 'model.safetensors' || part.length <= 1) return void res.end(part);
  res.write(part.subarray(0, 20_000));
  if (id === 'cut') setTimeout(() => res.destroy(), 50);
  return; // stall: keep the connection open, send nothing more
}

describe('interrupts leave nothing behind', () => {
  let w: World;
  beforeAll(() => (w = newWorld()));

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a build with a model written aside (the calibration sampler): exit ${signal === 'SIGINT' ? 130 : 143}, no temporary folder, no bundle`, async () => {
      const dest = join(w.cwd, `out-${signal}`);
      let pid = 0;
      const run = runCli(['build', w.model, '--quantize', 'gptq', '--calib-samples', '256', '--out', dest], {
        cwd: w.cwd,
        env: { ALKI_CACHE: w.cache },
        onSpawn: (p) => (pid = p),
      });
      // Wait for the sampler model (written before calibration) to exist, then interrupt.
      const t0 = Date.now();
      const baselineWritten = () => readdirSync(w.cwd).some((e) => e.endsWith('-work') && existsSync(join(w.cwd, e, 'sampler', 'model.onnx')));
      while (!baselineWritten() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
      expect(baselineWritten()).toBe(true);
      process.kill(pid, signal);
      const r = await run;
      expect(r.status).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(r.stderr).toMatch(new RegExp(`interrupted \\(${signal}\\): temporary files removed`));
      expect(readdirSync(w.cwd).filter((e) => e.includes(`out-${signal}`))).toEqual([]);
    });
  }

  it('a later build removes what a killed (SIGKILL) build left', async () => {
    const dead = spawnSync('true').pid!; // a pid that has exited
    const stale = join(w.cwd, `.out-k.partial-${dead}-abc-work`);
    mkdirSync(stale);
    writeFileSync(join(stale, 'model.onnx'), 'fp32 weights');
    const r = await runCli(['build', w.model, '--out', join(w.cwd, 'out-k'), '--quiet'], { cwd: w.cwd, env: { ALKI_CACHE: w.cache } });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(stale)).toBe(false);
  });

  it('SIGTERM to bench stops its speed worker too', async () => {
    const b = join(w.cwd, 'b');
    expect(alki(['build', w.model, '--out', b, '--quiet']).status).toBe(0);
    let pid = 0;
    const run = runCli(['bench', b, '--metrics', 'speed', '--runs', '1000', '--new-tokens', '32', '--prompt-tokens', '32'], {
      cwd: w.cwd,
      onSpawn: (p) => (pid = p),
    });
    const workers = () =>
      execFileSync('ps', ['-eo', 'pid,args'])
        .toString()
        .split('\n')
        .filter((l) => l.includes('speed-worker') && l.includes(b));
    const t0 = Date.now();
    while (workers().length === 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    expect(workers().length).toBe(1);
    process.kill(pid, 'SIGTERM');
    const r = await run;
    expect(r.status).toBe(143);
    await new Promise((r2) => setTimeout(r2, 500));
    expect(workers()).toEqual([]);
  });
});
