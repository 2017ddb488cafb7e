// Runs once before the tests: a WebGPU adapter must exist (lavapipe on a machine without a GPU). A missing
// adapter fails the run rather than silently skipping the GPU tests.
import { createWebGpuBackend } from '../src/init.js';

export default async function setup(): Promise<void> {
  const gpu = await createWebGpuBackend();
  if (!gpu) {
    throw new Error(
      'no WebGPU adapter: the GPU tests cannot run. Run `bash scripts/setup-machine.sh` (Mesa >= 25 lavapipe from bookworm-backports).',
    );
  }
  const f = [...gpu.features].filter((x) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(x));
  process.env.WGNN_ADAPTER = gpu.description;
  console.log(
    `WebGPU adapter: ${gpu.description} [${f.join(', ')}]; maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}`,
  );
  gpu.destroy();
}
