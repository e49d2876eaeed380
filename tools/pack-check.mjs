#!/usr/bin/env node
// pnpm pack:check (run by CI): the published packages install and work outside the monorepo.
// 1. `pnpm pack` every public package (workspace:* becomes the real version) into a temp folder;
// 2. an empty project installs all the tarballs with plain npm and runs `alki build demo` and `alki run` there;
// 3. another empty project installs @alki/quantizers (and the @alki packages it needs, which are not on a registry
//    here) and runs the README's example on a foreign ONNX model: quantize with RTN int4, run with onnxruntime.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'alki-pack-check-'));
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const log = (s) => process.stdout.write(`--- ${s}\n`);

function run(cmd, args, cwd, opts = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 600_000, ...opts });
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}\nerror: \`${cmd} ${args.join(' ')}\` failed in ${cwd} (exit ${r.status})\n`);
    process.exit(1);
  }
  return r.stdout;
}

try {
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  const dirs = [...readdirSync(join(root, 'packages')).map((d) => join(root, 'packages', d)), join(root, 'apps', 'cli'), join(root, 'apps', 'web-bench')];
  const byName = {};
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    run('pnpm', ['pack', '--pack-destination', tarballs], dir);
    const file = readdirSync(tarballs).find((f) => f.startsWith(pkg.name.replace('@', '').replace('/', '-') + '-'));
    byName[pkg.name] = join(tarballs, file);
  }
  log(`packed ${Object.keys(byName).length} packages: ${Object.keys(byName).join(', ')}`);

  // The CLI, installed as a user would, from the tarballs only.
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'alki-pack-check', private: true, type: 'module' }));
  run('npm', ['install', ...Object.values(byName)], app);
  const built = run(join(app, 'node_modules', '.bin', 'alki'), ['build', 'demo', '--out', 'demo-bundle'], app);
  if (!/sample \(greedy, 48 tokens\): Once upon a time/.test(built)) throw new Error(`alki build demo printed no sample:\n${built}`);
  const ran = run(join(app, 'node_modules', '.bin', 'alki'), ['run', 'demo-bundle', '--prompt', 'Once upon a time', '-n', '16'], app);
  if (!/Once upon a time/.test(ran)) throw new Error(`alki run printed:\n${ran}`);
  log(`npm-installed CLI: alki build demo and alki run work (${ran.trim().split('\n').pop()})`);

  // @alki/quantizers on its own, on a graph Alki did not build.
  const q = join(work, 'quantizers-only');
  mkdirSync(q);
  writeFileSync(join(q, 'package.json'), JSON.stringify({ name: 'quantizers-only', private: true, type: 'module' }));
  const needed = ['@alki/quantizers', '@alki/core', '@alki/onnx', '@alki/runtime'];
  run('npm', ['install', ...needed.map((n) => byName[n]), 'onnxruntime-node@1.30.0'], q);
  writeFileSync(
    join(q, 'example.mjs'),
    `import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, floatTensor, readModelFile, writeModelFile } from '@alki/onnx';
import { createQuantizer } from '@alki/quantizers';
// A foreign graph: one MatMul with a constant 64×32 weight (what a third-party export contains).
const K = 64, N = 32;
const w = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 0.37));
const g = new GraphBuilder('foreign');
const x = g.input('x', DataType.FLOAT, [1, K]);
g.output(g.node('MatMul', [x, g.initializer(floatTensor('w', [K, N], w))], {}, { outputs: ['y'] }), DataType.FLOAT, [1, N]);
writeModelFile('model.onnx', createModel(g.build(), { opsets: { '': 17 } }));
// The README's example.
const model = readModelFile('model.onnx');
const { model: quantized, report } = await createQuantizer('rtn', { bits: 4, blockSize: 32 }).quantize(model);
writeModelFile('model.int4.onnx', quantized);
const s = await ort.InferenceSession.create('model.int4.onnx');
const xs = Float32Array.from({ length: K }, (_, k) => Math.cos(k * 0.61));
const y = (await s.run({ x: new ort.Tensor('float32', xs, [1, K]) })).y.data;
const ref = Array.from({ length: N }, (_, n) => { let t = 0; for (let k = 0; k < K; k++) t += xs[k] * w[k * N + n]; return t; });
// int4 weights: the output within the weights' own relative error (report.layers[0].relativeError, ~0.1) and some.
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const err = norm(ref.map((r, n) => r - y[n])) / norm(ref);
if (!(quantized.graph.nodes.some((n) => n.opType === 'MatMulNBits') && err < 2 * report.layers[0].relativeError + 0.02)) throw new Error('quantized output off by ' + err);
console.log('quantized ' + report.layers.length + ' layer(s), relative error ' + err.toFixed(4));
`,
  );
  const out = run(process.execPath, ['example.mjs'], q);
  log(`@alki/quantizers alone: ${out.trim()}`);
  log('pack check passed');
} catch (e) {
  process.stderr.write(`error: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
