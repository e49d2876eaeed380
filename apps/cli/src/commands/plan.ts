import type { Argv } from 'yargs';
import { AlkiError } from '@alki/core';
import { parseMemory, planBuilds, RUN_MEMORY, type Plan } from '@alki/bundle';
import { presetById, PRESETS, type HardwarePreset } from '@alki/hardware-presets';
import { detectDevice } from '@alki/hardware-presets/node';
import { resolveModelConfig } from '@alki/models';
import { formatBytes, note, progressPrinter, type OutputFlags } from '../output.js';

/** `--target`: a preset id, or `auto` (this machine, detected; its memory unless --memory says otherwise). */
export function resolveTarget(target: string): { preset: HardwarePreset; detectedMemoryBytes?: number; note?: string } {
  if (target === 'auto') {
    const d = detectDevice();
    return {
      preset: d.preset,
      detectedMemoryBytes: d.totalMemoryBytes,
      note: `--target auto: ${d.preset.id} (${d.decidedBy.join('; ')})${d.notes.length ? `; ${d.notes.join('; ')}` : ''}`,
    };
  }
  try {
    return { preset: presetById(target) };
  } catch {
    throw new AlkiError('BAD_OPTION', `unknown --target "${target}"`, `choose one of: auto, ${PRESETS.map((p) => p.id).join(', ')} (alki presets lists them)`);
  }
}

function describePlan(p: Plan, modelId: string): string {
  const lines = [
    `${modelId} on ${p.preset.id}: ${formatBytes(p.usableBytes)} usable of ${formatBytes(p.memoryBytes)}, context ${p.context} tokens`,
    '',
    'build                          bundle     peak memory   fits',
  ];
  for (const r of p.rows)
    lines.push(
      `${(r === p.chosen ? '▶ ' : '  ') + r.label.padEnd(29)} ${formatBytes(r.bundleBytes).padStart(9)} ${formatBytes(r.peakBytes).padStart(13)}   ${r.fits ? 'yes' : 'no'}`,
    );
  lines.push('');
  const c = p.chosen;
  if (c) {
    const rec = p.preset.recommended;
    lines.push(
      `chosen: ${c.label} — alki build <model> --target ${p.preset.id}${c.bits !== rec.bits.value || c.blockSize !== rec.blockSize.value || c.headBits !== rec.headBits.value ? ` --bits ${c.bits} --block-size ${c.blockSize} --head-bits ${c.headBits}` : ''}`,
    );
    lines.push(
      `peak = ${formatBytes(c.parts.baseBytes)} runtime + ${formatBytes(c.parts.weightBytes)} weights + ${formatBytes(c.parts.kvBytes)} KV cache (2 × ${p.context} tokens) + ${formatBytes(c.parts.activationBytes)} prompt logits`,
    );
  }
  lines.push(`memory model: measured with onnxruntime-node 1.30 on an x86 Sapphire Rapids machine (docs/models.md); base ${formatBytes(RUN_MEMORY.baseBytes)}`);
  return lines.join('\n');
}

export function planCommand(y: Argv, signal: AbortSignal) {
  return y.command(
    'plan <model>',
    'which builds of a model fit a device, from config.json alone (no weights downloaded)',
    (a) =>
      a
        .positional('model', { type: 'string', demandOption: true, describe: 'local model folder, hub id, or "demo"' })
        .option('target', { type: 'string', default: 'auto', describe: 'a preset (alki presets) or auto (this machine)' })
        .option('memory', { type: 'string', describe: 'the device’s memory, e.g. 4GB (default: the preset’s, or this machine’s with auto)' })
        .option('context', { type: 'number', describe: 'context to plan for (default: the preset’s, at most the model’s)' })
        .option('revision', { type: 'string', describe: 'hub branch, tag or commit' })
        .option('offline', { type: 'boolean', describe: 'no network: use the Hugging Face cache only (also HF_HUB_OFFLINE=1)' })
        .example('alki plan TinyLlama/TinyLlama-1.1B-Chat-v1.0 --target raspberry-pi-4 --memory 2GB', ''),
    async (args) => {
      const flags = args as OutputFlags;
      const t = resolveTarget(args.target as string);
      if (t.note) note(flags, t.note);
      const source = await resolveModelConfig(args.model as string, {
        revision: args.revision as string | undefined,
        offline: args.offline as boolean | undefined,
        onProgress: progressPrinter(flags),
        signal,
      });
      const memoryBytes = args.memory !== undefined ? parseMemory(args.memory as string) : t.detectedMemoryBytes;
      const plan = planBuilds(source.config, t.preset, { memoryBytes, context: args.context as number | undefined });
      const failure = plan.chosen
        ? undefined
        : new AlkiError(
            'TOO_LARGE',
            `no build of ${source.id} fits ${t.preset.id} (${formatBytes(plan.usableBytes)} usable at ${plan.context} tokens)`,
            plan.suggestion ?? 'choose a smaller model',
          );
      if (flags.json) {
        // One document, the failure inside it.
        const error = failure ? { error: { code: failure.code, message: failure.message, hint: failure.hint } } : {};
        process.stdout.write(`${JSON.stringify({ model: source.id, ...plan, preset: plan.preset.id, ...error }, null, 2)}\n`);
        if (failure) process.exitCode = 1;
        return;
      }
      process.stdout.write(`${describePlan(plan, source.id)}\n`);
      if (failure) throw failure;
    },
  );
}
