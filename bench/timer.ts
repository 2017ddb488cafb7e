// Timing: trials of R runs (input sets rotated) with one wait per trial, measured two ways at once: wall clock around
// the trial (enqueue + submit + wait), and, where the device has `timestamp-query`, the GPU time of the compute passes
// the trial encoded (PassTimer).
//
// NOTE: no engine offers a hook on its compute passes (wgnn's encoder and pass are private to WebGpuBackend), so
// PassTimer wraps the device's createCommandEncoder and adds `timestampWrites` to every compute pass begun while a
// window is open. That works the same for wgnn, TF.js and jax-js, which each own a device.

const QUERY_CAPACITY = 4096; // the most queries one timestamp query set may hold

/** Sums the GPU time of the compute passes begun between start() and stop() on one device. */
export class PassTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly staging: GPUBuffer;
  private readonly createEncoder: (d?: GPUCommandEncoderDescriptor) => GPUCommandEncoder;
  private window: { next: number; overflow: boolean; foreign: number } | undefined;

  /** undefined when the device lacks `timestamp-query`. */
  static on(device: GPUDevice): PassTimer | undefined {
    const known = timers.get(device);
    if (known !== undefined) return known ?? undefined;
    const t = device.features.has('timestamp-query') ? new PassTimer(device) : undefined;
    timers.set(device, t ?? null);
    return t;
  }

  private constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
    this.resolveBuf = device.createBuffer({
      size: QUERY_CAPACITY * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.staging = device.createBuffer({
      size: QUERY_CAPACITY * 8,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.createEncoder = device.createCommandEncoder.bind(device);
    device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor): GPUCommandEncoder => {
      const enc = this.createEncoder(desc);
      const begin = enc.beginComputePass.bind(enc);
      enc.beginComputePass = (pd?: GPUComputePassDescriptor): GPUComputePassEncoder => {
        const w = this.window;
        if (!w) return begin(pd);
        if (pd?.timestampWrites) {
          w.foreign++; // the engine times this pass itself (TF.js under tf.profile): leave it alone
          return begin(pd);
        }
        if (w.next + 2 > QUERY_CAPACITY) {
          w.overflow = true;
          return begin(pd);
        }
        const i = w.next;
        w.next += 2;
        return begin({
          ...pd,
          timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 },
        });
      };
      return enc;
    };
  }

  start(): void {
    this.window = { next: 0, overflow: false, foreign: 0 };
  }

  /**
   * Closes the window (call it after the work has finished) and returns the summed pass time in ms, or undefined if
   * some pass went untimed. Passes begun but never submitted resolve to 0 and are skipped.
   */
  async stop(): Promise<number | undefined> {
    const w = this.window;
    this.window = undefined;
    if (!w || w.overflow || w.foreign > 0) return undefined;
    if (w.next === 0) return 0;
    const bytes = w.next * 8;
    const enc = this.createEncoder();
    enc.resolveQuerySet(this.querySet, 0, w.next, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ, 0, bytes);
    const t = new BigUint64Array(this.staging.getMappedRange(0, bytes).slice(0));
    this.staging.unmap();
    let ns = 0n;
    for (let i = 0; i < w.next; i += 2) {
      const [b, e] = [t[i]!, t[i + 1]!];
      if (b > 0n && e >= b) ns += e - b;
    }
    return Number(ns) / 1e6;
  }
}

const timers = new WeakMap<GPUDevice, PassTimer | null>();

export interface Stats {
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

export interface Timing {
  /** Runs per trial (one wait each) and trials. */
  reps: number;
  trials: number;
  /** Per run, ms: wall clock of a trial over reps. */
  wall: Stats;
  /** Per run, ms: GPU time of the trial's compute passes over reps (where the device has timestamp-query). */
  gpu?: Stats;
}

export interface TimingOpts {
  /** Aim for this much time per trial, so one wait's latency stays small next to it. */
  trialMs: number;
  trials: number;
  /** Most runs per trial (tiny kernels). */
  maxReps: number;
}

/** Runs over this many ms get fewer trials (3), and no warm-up of the other input sets. */
const LONG_RUN_MS = 250;

/**
 * Times `run(set)`: one run to size R (pipelines were compiled by the validation run before this), each other input
 * set once (warm-up; skipped for long runs, where first-touch costs are noise), then trials of R runs cycling through
 * the sets, one `sync()` per trial.
 */
export async function measure(
  run: (set: number) => void,
  sync: () => Promise<void>,
  sets: number,
  timer: PassTimer | undefined,
  o: TimingOpts,
): Promise<Timing> {
  let t0 = performance.now();
  run(0);
  await sync();
  const estimate = performance.now() - t0;
  const long = estimate > LONG_RUN_MS;
  if (!long) {
    for (let s = 1; s < sets; s++) run(s);
    await sync();
  }
  const reps = Math.max(1, Math.min(o.maxReps, Math.round(o.trialMs / Math.max(estimate, 1e-3))));
  const trials = long ? Math.min(3, o.trials) : o.trials;
  const wall: number[] = [];
  const gpu: number[] = [];
  let gpuOk = timer !== undefined;
  for (let t = 0; t < trials; t++) {
    timer?.start();
    t0 = performance.now();
    for (let r = 0; r < reps; r++) run((t * reps + r + 1) % sets);
    await sync();
    wall.push((performance.now() - t0) / reps);
    const g = await timer?.stop();
    if (g === undefined || g <= 0) gpuOk = false;
    else gpu.push(g / reps);
  }
  return { reps, trials, wall: stats(wall), ...(gpuOk ? { gpu: stats(gpu) } : {}) };
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => {
    const i = q * (s.length - 1);
    const lo = Math.floor(i);
    return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (i - lo);
  };
  return { median: at(0.5), min: s[0]!, max: s[s.length - 1]!, q1: at(0.25), q3: at(0.75) };
}
