// Models in and out of wgnn: PyTorch state dicts and module source; ONNX graphs (import as a trainable layer, export).
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
