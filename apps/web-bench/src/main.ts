// The web bench page: pick a bundle (URL, folder picker, drag and drop, or ?bundle=URL), measure it with
// onnxruntime-web, show the same table and charts as `alki bench`'s HTML report. `alki bench --browser` drives it
// through ?auto=1 and reads window.__alki.
import { isAlkiError } from '@alki/core';
import {
  benchmarkInBrowser,
  bundleFromFiles,
  bundleFromUrl,
  formatHtml,
  parseMetrics,
  type BrowserBackend,
  type BrowserReport,
  type BundleSource,
  type OrtWeb,
} from '@alki/eval/web';

interface PageState {
  state: 'idle' | 'running' | 'done' | 'error';
  report?: BrowserReport;
  error?: { code: string; message: string; hint?: string };
  progress?: string;
}
const page: PageState = { state: 'idle' };
(window as unknown as { __alki: PageState }).__alki = page;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
let pickedFiles: Map<string, Blob> | undefined;
let pickedText: { name: string; content: string } | undefined;

// onnxruntime-web is served beside the page (ort/), never from a CDN: the page works offline.
const ortUrl = new URL('./ort/', location.href).href;
async function loadOrt(): Promise<OrtWeb> {
  const ort = (await import(/* @vite-ignore */ `${ortUrl}ort.min.mjs`)) as OrtWeb & { env: { wasm: { wasmPaths?: string } } };
  ort.env.wasm.wasmPaths = ortUrl;
  return ort;
}

function status(text: string): void {
  page.progress = text;
  $('status').textContent = text;
}

function showError(e: unknown): void {
  const err = isAlkiError(e) ? { code: e.code, message: e.message, hint: e.hint } : { code: 'INTERNAL', message: String((e as Error)?.message ?? e) };
  page.error = err;
  page.state = 'error';
  const box = $('error');
  box.textContent = `${err.message}${err.hint ? `\n→ ${err.hint}` : ''}`;
  box.style.display = 'block';
  status('Failed.');
}

async function run(): Promise<void> {
  $('error').style.display = 'none';
  page.state = 'running';
  page.error = undefined;
  try {
    const url = $<HTMLInputElement>('bundle-url').value.trim();
    let bundle: BundleSource;
    if (pickedFiles) bundle = bundleFromFiles(pickedFiles, 'the picked folder');
    else if (url) bundle = bundleFromUrl(url);
    else throw Object.assign(new Error('no bundle: give its URL, pick its folder, or drop it here'), { code: 'BAD_OPTION' });
    const baselineUrl = $<HTMLInputElement>('baseline-url').value.trim();
    const metrics = parseMetrics(['perplexity', 'speed', 'memory'].filter((m) => $<HTMLInputElement>(`m-${m}`).checked).join(','));
    const text = pickedText ?? (params.get('text') ? await fetchText(params.get('text')!) : undefined);
    const num = (name: string) => (params.get(name) !== null ? Number(params.get(name)) : undefined);
    const threadsValue = $<HTMLInputElement>('threads').value;
    status('Loading onnxruntime-web…');
    const ort = await loadOrt();
    const report = await benchmarkInBrowser({
      ort,
      backend: $<HTMLSelectElement>('backend').value as BrowserBackend,
      threads: threadsValue ? Number(threadsValue) : undefined,
      bundle,
      baseline: baselineUrl ? bundleFromUrl(baselineUrl) : undefined,
      text,
      metrics: metrics.filter((m) => m !== 'size'),
      context: num('context'),
      maxWindows: num('maxWindows'),
      speed: { promptTokens: num('promptTokens'), newTokens: num('newTokens'), runs: num('runs'), warmupRuns: num('warmupRuns') },
      onProgress: (e) => status(`${e.detail ?? e.step}${e.total > 1 ? ` ${e.done}/${e.total}` : ''}`),
    });
    page.report = report;
    page.state = 'done';
    const frame = $<HTMLIFrameElement>('report');
    frame.srcdoc = formatHtml(
      report,
      `Alki web bench: ${report.evaluations[0].target.name} (${report.browser.backend}, ${report.browser.threads} thread${report.browser.threads === 1 ? '' : 's'})`,
    );
    frame.style.display = 'block';
    frame.onload = () => (frame.style.height = `${(frame.contentDocument?.documentElement.scrollHeight ?? 800) + 20}px`);
    status('Done.');
  } catch (e) {
    showError(e);
  }
}

async function fetchText(url: string): Promise<{ name: string; content: string }> {
  const res = await fetch(url);
  if (!res.ok) throw Object.assign(new Error(`the evaluation text ${url} answered ${res.status}`), { code: 'NOT_FOUND' });
  return { name: url.split('/').pop() || url, content: await res.text() };
}

/** Files of a dropped folder, with paths relative to it (webkitGetAsEntry walks directories). */
async function droppedFiles(items: DataTransferItemList): Promise<Map<string, Blob>> {
  const out = new Map<string, Blob>();
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
      out.set(prefix + entry.name, file);
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => !!e);
  for (const e of entries) await walk(e, '');
  return out;
}

$<HTMLInputElement>('bundle-dir').addEventListener('change', (ev) => {
  const files = (ev.target as HTMLInputElement).files;
  if (!files?.length) return;
  pickedFiles = new Map([...files].map((f) => [f.webkitRelativePath || f.name, f]));
  status(`Picked ${files.length} files. Press Run.`);
});
$<HTMLInputElement>('text-file').addEventListener('change', async (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) pickedText = { name: f.name, content: await f.text() };
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (!e.dataTransfer) return;
  pickedFiles = await droppedFiles(e.dataTransfer.items);
  status(`Dropped ${pickedFiles.size} files. Press Run.`);
});
$('run').addEventListener('click', () => void run());

// ?bundle=URL&baseline=URL&text=URL&backend=wasm|webgpu&threads=N&metrics=perplexity,speed&auto=1
if (params.get('bundle')) $<HTMLInputElement>('bundle-url').value = params.get('bundle')!;
if (params.get('baseline')) $<HTMLInputElement>('baseline-url').value = params.get('baseline')!;
if (params.get('backend')) $<HTMLSelectElement>('backend').value = params.get('backend')!;
if (params.get('threads')) $<HTMLInputElement>('threads').value = params.get('threads')!;
if (params.has('metrics')) {
  // metrics= (empty): size only, nothing run.
  const chosen = parseMetrics(params.get('metrics')!);
  for (const m of ['perplexity', 'speed', 'memory']) $<HTMLInputElement>(`m-${m}`).checked = chosen.includes(m as never);
}
if (params.get('auto') === '1') void run();
