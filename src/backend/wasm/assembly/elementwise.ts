// Elementwise kernels: unary activations forward and backward.
export function relu_fwd(y: usize, x: usize, n: i32, task: i32, tasks: i32): void {
  for (let i = 0; i < n; i++) store<f32>(y + ((<usize>i) << 2), max(load<f32>(x + ((<usize>i) << 2)), 0));
}
