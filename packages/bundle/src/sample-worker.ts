// Child-process entry of the build's calibration sampling (build.ts): samples token sequences from a model file
// and prints them; not a public API. In its own process, the sampling session's memory (onnxruntime keeps what a
// released session used) is not added to the build's peak.
import { workerMain, workerProgress } from '@alki/core/node';
import { calibrationFromModel } from '@alki/quantizers';

const [modelPath, json] = process.argv.slice(2);
const o = JSON.parse(json) as { bos: number; samples: number; seqLen: number; seed?: number; label: string; memoryArena?: boolean };
await workerMain(async () => ({ data: await calibrationFromModel(modelPath, o.bos, { ...o, onProgress: workerProgress }) }));
