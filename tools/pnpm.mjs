#!/usr/bin/env node
// `node tools/pnpm.mjs <pnpm args>`: runs the repository's pnpm (package.json's packageManager version) where only
// Node and npm exist. A pnpm of that version on PATH is used as is; otherwise npm installs it once into .cache/pnpm
// (inside the repository: nothing global, no root needed) and it goes first on PATH, so that turbo finds it too.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const want = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const version = (bin, env) => spawnSync(bin, ['--version'], { encoding: 'utf8', env, shell: process.platform === 'win32' }).stdout?.trim();

const env = {
  ...process.env,
  ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? 'skip',
  TURBO_TELEMETRY_DISABLED: '1',
  npm_config_update_notifier: 'false',
};
if (version('pnpm', env) !== want) {
  const prefix = join(root, '.cache', 'pnpm');
  const bin = join(prefix, 'node_modules', '.bin');
  env.PATH = `${bin}${process.platform === 'win32' ? ';' : ':'}${env.PATH ?? ''}`;
  if (version(join(bin, 'pnpm'), env) !== want) {
    process.stderr.write(`installing pnpm ${want} into .cache/pnpm with npm (once)…\n`);
    const r = spawnSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', prefix, `pnpm@${want}`], {
      stdio: 'inherit',
      env,
      shell: process.platform === 'win32',
    });
    if (r.status !== 0 || !existsSync(join(bin, 'pnpm'))) {
      process.stderr.write(
        `error: npm could not install pnpm ${want} (see above)\n  hint: check the network to the npm registry, or install pnpm yourself: npm i -g pnpm@${want}\n`,
      );
      process.exit(1);
    }
  }
}
// `npm test` on a fresh clone, or after a pull that changed the lockfile: install first (pnpm exec and run find
// nothing, or stale tools, otherwise).
const modules = join(root, 'node_modules', '.modules.yaml');
const stale = !existsSync(modules) || statSync(join(root, 'pnpm-lock.yaml')).mtimeMs > statSync(modules).mtimeMs;
if ((process.argv[2] === 'exec' || process.argv[2] === 'run') && stale) {
  const install = spawnSync('pnpm', ['install', '--frozen-lockfile'], { stdio: 'inherit', env, cwd: root, shell: process.platform === 'win32' });
  if (install.status !== 0) process.exit(install.status ?? 1);
}
// From the repository root (pnpm install must be); `alki` resolves the user's paths against INIT_CWD, which npm set.
const run = spawnSync('pnpm', process.argv.slice(2), { stdio: 'inherit', env, cwd: root, shell: process.platform === 'win32' });
process.exit(run.status ?? (run.signal === 'SIGINT' ? 130 : 1));
