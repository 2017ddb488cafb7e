// Models in and out of wgnn: PyTorch state dicts and module source; ONNX graphs (import as a trainable layer, export).
import { loadOnnx } from './onnx.js';
import { toOnnx } from './onnx-export.js';

export {
  toPyTorch,
  savePyTorch,
  loadPyTorch,
  torchPlan,
  type PyTorchExport,
  type TorchPlan,
  type TorchEntry,
} from './pytorch.js';
export { loadOnnx, OnnxGraph } from './onnx.js';
export { toOnnx } from './onnx-export.js';

/** The ONNX functions under one name: `wg.interop.onnx.load(bytes)` (= loadOnnx), `wg.interop.onnx.write(model)` (= toOnnx). */
export const onnx = {
  /** {@link loadOnnx}: an ONNX file as a trainable Sequential. */
  load: loadOnnx,
  /** {@link toOnnx}: a model as an ONNX file (opset 17). */
  write: toOnnx,
} as const;
