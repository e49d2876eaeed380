/**
 * A progress event. Libraries report through a callback; only the CLI draws
 * bars. `done`/`total` count units of `step` (layers, tensors, bytes, ...).
 */
export interface ProgressEvent {
  /** Short name of the step, e.g. "export", "quantize", "calibrate". */
  step: string;
  done: number;
  total: number;
  /** What is being worked on now, e.g. "model.layers.3.mlp.down_proj". */
  detail?: string;
  /** Unit of done/total when it is not "items", e.g. "bytes". */
  unit?: string;
  /** A message for the user, shown once as a line of its own (e.g. a default chosen for them); done/total are not progress then. */
  message?: string;
}

/** Callback that receives progress events. */
export type ProgressCallback = (event: ProgressEvent) => void;
