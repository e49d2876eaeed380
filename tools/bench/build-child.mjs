// One `alki build` (buildBundle) in this process, for build.mjs: wall time and peak resident memory per stage
// (VmHWM, reset at each stage through /proc/self/clear_refs), printed as one JSON line.
import { readFileSync, writeFileSync } from 'node:fs';
import { buildBundle } from '@alki/bundle';
import { enableGarbageCollection } from '@alki/core/node';

// As the CLI does: the calibrated quantizers' garbage meters need collections (see enableGarbageCollection).
enableGarbageCollection();

const opts = JSON.parse(process.argv[2]);
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const resetPeak = () => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
};
const stages = [];
const t0 = performance.now();
let current;
const close = () => {
  if (current) stages.push({ stage: current.name, seconds: (performance.now() - current.start) / 1000, peakRssBytes: hwm() });
};
let resettable = resetPeak();
const result = await buildBundle({
  ...opts,
  onProgress: (p) => {
    if (p.message) return void process.stderr.write(`${p.message}\n`);
    // The calibration data stage in its two parts: writing the sampler's copy of the model, then sampling from it.
    const part = p.step === 'calibration data' && p.detail ? (p.detail.startsWith('writing') ? ': sampler copy' : ': sampling') : '';
    const name = p.step === 'write' ? `write: ${p.detail ?? 'done'}` : `${p.step}${part}`;
    if (name === current?.name) return;
    close();
    resettable = resetPeak() && resettable;
    current = { name, start: performance.now() };
  },
});
close();
process.stdout.write(
  `${JSON.stringify({ seconds: (performance.now() - t0) / 1000, peakRssBytes: Math.max(...stages.map((s) => s.peakRssBytes)), perStagePeaks: resettable, stages, testRunPeakRssBytes: result.testRunPeakRssBytes, notes: result.notes, bundleBytes: result.manifest.metrics.sizeBytes.value, modelBytes: result.manifest.metrics.modelBytes.value })}\n`,
);
