import type { BundleManifest } from './manifest.js';

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/** The bundle's model card: what it is, how it was made, what was measured, how to run it. */
export function bundleReadme(m: BundleManifest, folderName: string, evaluationMarkdown?: string): string {
  const q = m.quantization;
  const method =
    q.method === 'none'
      ? 'none (float32)'
      : q.method === 'smoothquant'
        ? `SmoothQuant W8A8: int8 per-channel weights (${q.w8a8Format ?? 's8'}), ${q.alpha === null ? 'no smoothing' : `α ${q.alpha ?? 0.5}`}, int8 dynamic activations (DynamicQuantizeMatMul)`
        : `${q.method}, int${q.bits}, block ${q.groupSize}, ${q.symmetric ? 'symmetric' : 'with zero points'}${q.mseClip ? ', block ranges by least squared error' : ''}${q.floatTargets ? ", fitted to the float model's outputs" : ''}`;
  const head =
    (q.headBits === undefined ? '' : `; output projection ${q.headBits === 32 ? 'float32' : `int${q.headBits}`}`) +
    (q.embedBits === undefined ? '' : `; embedding table ${q.embedBits === 32 ? 'float32' : `int${q.embedBits}`}`);
  const calibration = q.calibration
    ? `\n| calibration | ${q.calibration.samples} samples × ${q.calibration.sequenceLength} tokens, ${q.calibration.source} |`
    : '';
  const rows: string[] = [`| model files on disk | ${mb(m.metrics.modelBytes.value)} |`, `| whole bundle | ${mb(m.metrics.sizeBytes.value)} |`];
  if (m.metrics.quantizedWeightBytes) {
    const { float, quantized } = m.metrics.quantizedWeightBytes.value;
    rows.push(`| quantized layers | ${mb(float)} → ${mb(quantized)} (${((100 * quantized) / float).toFixed(1)}%) |`);
  }
  for (const [name, v] of Object.entries(m.metrics)) {
    if (!v || ['modelBytes', 'sizeBytes', 'quantizedWeightBytes', 'measuredOn'].includes(name)) continue;
    rows.push(`| ${name} | ${typeof v.value === 'number' ? Number(v.value.toPrecision(4)) : JSON.stringify(v.value)} (${v.method}) |`);
  }
  return `# ${m.source.id} — ${q.method === 'none' ? 'fp32' : `${q.method} int${q.bits}`}

Built by Alki ${m.alkiVersion} on ${m.createdAt}.

| | |
|---|---|
| source | ${m.source.id}${m.source.revision ? ` @ ${m.source.revision}` : ''} |
| architecture | ${m.source.architecture} (${m.source.modelType}), ${m.source.parameters.toLocaleString('en-US')} parameters |
| quantization | ${method}${head} |${calibration}
| graph | ONNX opset ${m.runtime.opset}, ${m.runtime.flavour} flavour, domains ${m.runtime.domains.join(', ')} |
| runtime | onnxruntime ${m.runtime.onnxruntime} |

## Measured

| metric | value |
|---|---|
${rows.join('\n')}

${evaluationMarkdown ? `## Benchmark\n\n${evaluationMarkdown}\n\n` : ''}## Run it

\`\`\`sh
alki run ${folderName} --prompt "Once upon a time"
alki info ${folderName} --verify
\`\`\`

Without Alki: \`${m.model.path}\` is a decoder with the transformers.js / Optimum names
(inputs \`input_ids\`, \`attention_mask\`, \`position_ids\`, \`past_key_values.{i}.key|value\`;
outputs \`logits\`, \`present.{i}.key|value\`) and loads in any onnxruntime ${m.runtime.onnxruntime}.
The tokenizer is \`tokenizer.json\`. Every file's size and sha256 are listed in \`alki.json\`.
In transformers.js (@huggingface/transformers, tested with 4.3.1; config.json names the dtype):

\`\`\`js
import { pipeline, env } from '@huggingface/transformers';
env.localModelPath = '.'; // the folder that holds ${folderName}/
const generator = await pipeline('text-generation', '${folderName}');
console.log((await generator('Once upon a time', { max_new_tokens: 32 }))[0].generated_text);
\`\`\`
`;
}
