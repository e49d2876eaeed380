/** PyTorch pickle checkpoints: loading one runs whatever code it carries, so Alki never does. */
export function isPickleCheckpoint(f: string): boolean {
  return /(^|\/)(pytorch_model(-\d+-of-\d+)?\.bin|[^/]+\.(pt|pth|ckpt))$/.test(f);
}

/** What to do with a pickle-only model. */
export const PICKLE_HINT =
  'Alki does not load pickle files (.bin/.pt): unpickling runs arbitrary code from the file. Look for a safetensors revision or a converted copy on the hub (often under refs/pr/… or another repository), or convert it yourself where you trust it: transformers save_pretrained(..., safe_serialization=True)';
