// matmul / matmul_bias kernels: y [Z,M,N] = act(a [.., M, K] @ b [.., K, N] + bias [N]) over the merged batch dims
// (strides 0 where an operand broadcasts), transpose flags handled while packing. Two calls: matmul_pack_b packs
// each batch's b into NR-column panels, matmul_tiles computes output tiles (packing a block of a per tile).
import { NR, epilogue, gemmBlock, packA, packB } from './gemm';

/** Element offset of batch z in an operand with merged batch dims [.., d1, d2, d3] and strides s0..s3. */
// prettier-ignore
@inline function batchOffset(z: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): i32 {
  const i3 = z % d3; z /= d3;
  const i2 = z % d2; z /= d2;
  const i1 = z % d1; z /= d1;
  return z * s0 + i1 * s1 + i2 * s2 + i3 * s3;
}

/**
 * Packs b of every batch z < Z into pb (batch z at z·ceil(N/NR)·NR·K floats): b [.., K, N], or [.., N, K] when
 * transB. Tasks split the Z·ceil(N/NR) panels into contiguous runs.
 */
export function matmul_pack_b(
  b: usize, pb: usize, K: i32, N: i32, transB: bool, Z: i32,
  d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32,
  task: i32, tasks: i32,
): void {
  const panels = (N + NR - 1) / NR;
  const total = Z * panels;
  const t0 = <i32>(<i64>total * task / tasks);
  const t1 = <i32>(<i64>total * (task + 1) / tasks);
  for (let t = t0; t < t1; t++) {
    const z = t / panels;
    const p = t % panels;
    const src = b + (<usize>batchOffset(z, d1, d2, d3, s0, s1, s2, s3) << 2);
    const dst = pb + (<usize>z * <usize>panels * <usize>NR * <usize>K << 2);
    packB(src, transB ? 1 : N, transB ? K : 1, K, N, dst, p, p + 1);
  }
}

/**
 * y [Z, M, N] tile by tile: tiles of mc x nc (mc a multiple of MR, nc of NR) in batch-major, row-major order, split
 * into `tasks` contiguous runs; a [.., M, K] (or [.., K, M] when transA), pb from matmul_pack_b. Each task uses
 * `taskBytes` of scratch at scratch + task·taskBytes: a packed A block (mc x kcb floats) and an MR x NR edge tile.
 * K is summed in blocks of kcb, each element's sum running k = 0..K-1 in order whatever the blocking.
 */
export function matmul_tiles(
  a: usize, pb: usize, y: usize, bias: usize, hasBias: bool, act: i32, alpha: f32,
  M: i32, K: i32, N: i32, transA: bool, Z: i32,
  d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32,
  mc: i32, nc: i32, kcb: i32, scratch: usize, taskBytes: i32,
  task: i32, tasks: i32,
): void {
  const mt = (M + mc - 1) / mc;
  const nt = (N + nc - 1) / nc;
  const total = Z * mt * nt;
  const t0 = <i32>(<i64>total * task / tasks);
  const t1 = <i32>(<i64>total * (task + 1) / tasks);
  const pa = scratch + <usize>task * <usize>taskBytes;
  const tmp = pa + (<usize>(mc * kcb) << 2);
  const Np = (N + NR - 1) / NR * NR;
  for (let t = t0; t < t1; t++) {
    const z = t / (mt * nt);
    const m0 = (t / nt) % mt * mc;
    const n0 = t % nt * nc;
    const mcc = min(mc, M - m0);
    const ncc = min(nc, N - n0);
    const az = a + (<usize>batchOffset(z, d1, d2, d3, s0, s1, s2, s3) << 2);
    const pbz = pb + (<usize>z * <usize>Np * <usize>K << 2);
    const yz = y + (<usize>z * <usize>M * <usize>N << 2);
    let k0 = 0;
    do {
      const kc = min(kcb, K - k0);
      packA(az, transA ? 1 : K, transA ? M : 1, M, m0, mcc, k0, kc, pa);
      gemmBlock(pa, pbz, K, k0, kc, m0, mcc, n0, ncc, yz, N, M, N, tmp, k0 > 0);
      k0 += kc;
    } while (k0 < K);
    epilogue(yz, N, M, N, m0, mcc, n0, ncc, bias, hasBias, act, alpha);
  }
}
