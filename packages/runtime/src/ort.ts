import * as ort from 'onnxruntime-node';

// onnxruntime 1.30 writes a telemetry device id into ~/.cache/Microsoft/DeveloperTools at its first session
// unless this is set (measured): Alki writes nothing outside its output and its cache. A user's own setting wins.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/** onnxruntime-node, loaded the way every Alki package uses it (telemetry off). */
export { ort };
