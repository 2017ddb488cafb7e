// Models in and out of wgnn: PyTorch state dicts and module source.
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
