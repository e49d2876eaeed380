import type { Argv } from 'yargs';
import { AlkiError } from '@alki/core';
import { bundleSizeError, readBundle, verifyBundle, type BundleManifest, type VerifyResult } from '@alki/bundle';
import { formatBytes, keyValues, type OutputFlags } from '../output.js';

/** The human summary of a bundle, shared by `info` and `build`. */
export function describeBundle(dir: string, m: BundleManifest): string {
  const q = m.quantization;
  const head =
    (q.headBits === undefined ? '' : q.headBits === 32 ? ', lm_head float32' : q.headBits !== q.bits ? `, lm_head int${q.headBits}` : '') +
    (q.embedBits === undefined ? '' : q.embedBits === 32 ? ', embedding float32' : `, embedding int${q.embedBits}`);
  const layers = `${q.quantizedLayers} layers${q.excluded.length ? `, ${q.excluded.length} excluded` : ''}${head}`;
  const quant =
    q.method === 'none'
      ? 'none (float32)'
      : q.method === 'smoothquant'
        ? `smoothquant W8A8 (${q.w8a8Format ?? 's8'} per-channel weights, ${q.alpha === null ? 'no smoothing' : `α ${q.alpha ?? 0.5}`}, int8 dynamic activations), ${layers}`
        : `${q.method}${q.awqScales ? ' (on AWQ scales)' : ''} int${q.bits}, block ${q.groupSize}, ${q.symmetric ? 'symmetric' : 'zero points'}${q.mseClip ? ', MSE ranges' : ''}${q.floatTargets ? ', fitted to float outputs' : ''}, ${layers}`;
  const calib = q.calibration ? `${q.calibration.samples} × ${q.calibration.sequenceLength} tokens, ${q.calibration.source}` : undefined;
  const rows: [string, string][] = [
    ['bundle', dir],
    [
      'source',
      `${m.source.id}${m.source.revision ? ` @ ${m.source.revision}` : ''}${m.source.commitSha && m.source.commitSha !== m.source.revision ? ` (commit ${m.source.commitSha.slice(0, 12)})` : ''}`,
    ],
    ['architecture', `${m.source.architecture} (${m.source.modelType}), ${m.source.parameters.toLocaleString('en-US')} parameters`],
    ['shape', `${m.model.numLayers} layers, ${m.model.numKvHeads} kv heads × ${m.model.headDim}, vocab ${m.model.vocabSize}, context ${m.model.maxPositions}`],
    ['quantization', quant],
    ...(calib ? ([['calibration', calib]] as [string, string][]) : []),
    ...(targetRow(m) ? ([['target', targetRow(m)!]] as [string, string][]) : []),
    ['graph', `${m.model.path}${m.model.externalData.length ? ` + ${m.model.externalData.join(', ')}` : ''}, opset ${m.runtime.opset}, ${m.runtime.flavour}`],
    ['model size', formatBytes(m.metrics.modelBytes.value)],
    ['bundle size', `${formatBytes(m.metrics.sizeBytes.value)} in ${m.files.length} files`],
  ];
  const qb = m.metrics.quantizedWeightBytes?.value;
  if (qb)
    rows.push(['quantized layers', `${formatBytes(qb.float)} → ${formatBytes(qb.quantized)} (${((100 * qb.quantized) / qb.float).toFixed(1)}% of float32)`]);
  for (const [name, v] of Object.entries(m.metrics)) {
    if (!v || ['modelBytes', 'sizeBytes', 'quantizedWeightBytes'].includes(name)) continue;
    rows.push([name, `${typeof v.value === 'number' ? Number(v.value.toPrecision(4)) : JSON.stringify(v.value)}  (${v.method})`]);
  }
  rows.push(['built', `${m.createdAt} by Alki ${m.alkiVersion}`]);
  return keyValues(rows);
}

/** "raspberry-pi-5: 8.0 GiB, 4 threads, context 2048, est. peak 1.35 GB (overrides: bits)". */
function targetRow(m: BundleManifest): string | undefined {
  const t = m.target;
  if (!t || typeof t !== 'object') return typeof t === 'string' ? t : undefined;
  const s = t.settings;
  return `${t.preset}: ${formatBytes(t.memoryBytes)} memory, ${s.threads} threads, context ${s.context}, estimated peak ${formatBytes(t.estimatedPeakBytes)}${t.forcedFit ? ' (more than fits: --force-fit)' : ''}${t.overrides.length ? `; your flags overrode ${t.overrides.join(', ')}` : ''}`;
}

function describeVerify(v: VerifyResult): string {
  if (v.ok) return `verify        OK: ${v.checkedFiles} files, ${formatBytes(v.checkedBytes)} match alki.json`;
  return [`verify        FAILED: ${v.problems.length} problem(s)`, ...v.problems.map((p) => `  ${p.path}: ${p.problem} — ${p.detail}`)].join('\n');
}

export function infoCommand(y: Argv) {
  return y.command(
    'info <bundle>',
    'show what a bundle holds and how it was made',
    (a) =>
      a
        .positional('bundle', { type: 'string', demandOption: true, describe: 'bundle folder' })
        .option('verify', { type: 'boolean', default: false, describe: 're-hash every file and compare with alki.json' })
        .example('alki info dist/s260k-rtn4 --verify', ''),
    async (args) => {
      const flags = args as OutputFlags;
      const bundle = readBundle(args.bundle as string);
      const verify = args.verify ? verifyBundle(bundle.dir) : undefined;
      const failure =
        verify && !verify.ok
          ? new AlkiError(
              'VERIFY_FAILED',
              `${bundle.dir} failed verification: ${verify.problems.map((p) => `${p.path} (${p.problem})`).join(', ')}`,
              'the bundle was changed or damaged after it was built; copy it again or rebuild it',
            )
          : // Without --verify, the one-stat-per-file check `run` makes: a missing or truncated file is not reported as fine.
            bundleSizeError(bundle);
      if (flags.json) {
        // One document, with the failure inside it, and a non-zero exit.
        const error = failure ? { error: { code: failure.code, message: failure.message, hint: failure.hint } } : {};
        process.stdout.write(`${JSON.stringify({ dir: bundle.dir, manifest: bundle.manifest, ...(verify ? { verify } : {}), ...error }, null, 2)}\n`);
        if (failure) process.exitCode = 1;
        return;
      }
      process.stdout.write(`${describeBundle(bundle.dir, bundle.manifest)}\n${verify ? `${describeVerify(verify)}\n` : ''}`);
      if (failure) throw failure;
    },
  );
}
