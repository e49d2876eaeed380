// The hostile-input corpus' harness: every case runs the built CLI in a world of its own (a model, a home, a
// cache, a working folder) and checks the exit code, the one-paragraph message, and that nothing outside the
// output folder and Alki's cache was written or deleted.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cliPath } from './helpers.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

export interface World {
  root: string;
  model: string;
  cwd: string;
  home: string;
  cache: string;
}

const base = tempDir('alki-hostile-');
const pristine = tinyLlama({ seed: 17 });
let n = 0;

/** A fresh world: model/ (a tiny Llama), cwd/, home/, cache/. */
export function newWorld(): World {
  const root = join(base.dir, `w${n++}`);
  const w = { root, model: join(root, 'model'), cwd: join(root, 'cwd'), home: join(root, 'home'), cache: join(root, 'cache') };
  cpSync(pristine.dir, w.model, { recursive: true });
  for (const d of [w.cwd, w.home, w.cache]) mkdirSync(d, { recursive: true });
  return w;
}

export function cleanupWorlds(): void {
  base.cleanup();
  pristine.cleanup();
}

/** path → "size mtime" (or the link target) of everything under `root`, except the allowed paths. */
export function snapshot(root: string, allowed: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      if (allowed.some((a) => p === a || p.startsWith(`${a}/`) || p.startsWith(`${a}.`) || relative(a, p) === '')) continue;
      const st = lstatSync(p);
      out.set(relative(root, p), st.isDirectory() ? 'dir' : `${st.size} ${st.mtimeMs}`);
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** What differs between two snapshots: written, changed or deleted paths. */
export function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const diff: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) diff.push(`${before.has(p) ? 'changed' : 'written'}: ${p}`);
  for (const p of before.keys()) if (!after.has(p)) diff.push(`deleted: ${p}`);
  return diff;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI asynchronously (a mock hub in this process must keep answering), killing it after `timeoutMs`. */
export function runCli(
  args: string[],
  o: { cwd: string; env?: Record<string, string>; stdin?: string | Buffer; timeoutMs?: number; onSpawn?: (pid: number) => void },
): Promise<RunResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin.on('error', () => {});
    if (o.stdin !== undefined) child.stdin.end(o.stdin);
    else child.stdin.end();
    if (child.pid) o.onSpawn?.(child.pid);
  });
}

/** Patches the float32 data of one tensor of a safetensors file in place. */
export function patchTensor(file: string, name: string, patch: (d: Float32Array) => void): void {
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const [start, end] = header[name].data_offsets as [number, number];
  const at = 8 + headerLen + start;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + (end - start)));
  patch(data);
  Buffer.from(data.buffer).copy(buf, at);
  writeFileSync(file, buf);
}

/** Reads and rewrites a JSON file. */
export function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  edit(j);
  writeFileSync(file, JSON.stringify(j));
}

export { existsSync };
