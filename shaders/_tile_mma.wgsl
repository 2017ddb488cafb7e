// The register-blocked multiply of workgroup tiles that matmul.wgsl, matmul_vec4.wgsl and the implicit-GEMM conv
// kernels share. Included textually: it uses the including kernel's `a_tile`, `b_tile` (k-major vec4 tiles:
// tile[k][m / 4] holds rows m..m+3) and TILE_M / TILE_N overrides.

// Per-thread block of y: TM rows x TN columns (multiples of 4: they are held and read as vec4s). Consts, not
// overrides, because WGSL sizes function-scope (register) arrays with const-expressions only. 8x8 does 64 FMAs
// per 4 vec4 reads of workgroup memory, twice 4x4's ratio (on lavapipe 1.7x the speed of 4x4). TN is the including
// kernel's: 8 in the conv kernels, the op's choice per adapter in matmul's (_matmul.wgsl).
// The workgroup is (TILE_N / TN) x (TILE_M / TM) threads.
const TM: u32 = 8u;

// acc += one K slice of the tiles: `depth` k-rows from vec4 offsets a_base / b_base, rows a_row / b_row vec4s apart.
// A thread owns row quads lid.y + q * (TILE_M / TM) and column quads lid.x + q * (TILE_N / TN): interleaved
// rather than adjacent, so neighbouring threads read neighbouring vec4s of the tiles.
// acc[i][j / 4][j % 4] = y[row(i), col(j)] with row(i) = row0 + (lid.y + (i / 4) * (TILE_M / TM)) * 4 + i % 4.
// SUBGROUP_ROWS (the host's subgroupRowDefines: a software adapter whose subgroups are 8 consecutive invocations, and
// a workgroup whose rows of threads are whole subgroups): the 8 threads of a subgroup share lid.y, so the same 8 a
// values; lavapipe reads workgroup memory lane by lane (~7 instructions a lane, even where every lane reads one
// address), so one read per lane plus 8 broadcasts (an element extract each) replaces 8 reads per lane. The char
// GPT's step on lavapipe: 1838 vs 2008 ms, in turn in one process.
fn multiply_slice(acc: ptr<function, array<array<vec4f, TN / 4>, TM>>, depth: u32, a_base: u32, a_row: u32, b_base: u32,
                  b_row: u32, lid: vec3u) {
  for (var k = 0u; k < depth; k++) {
    var av: array<vec4f, TM / 4>;
    var bv: array<vec4f, TN / 4>;
// @if SUBGROUP_ROWS
    // Lane s (lid.x % 8 where the subgroups are 8 consecutive invocations) reads row s of the TM = 8.
    let s = lid.x % 8u;
    let x = a_tile[a_base + k * a_row + lid.y + (s / 4u) * (TILE_M / TM)][s % 4u];
    av[0] = vec4f(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u));
    av[1] = vec4f(subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u), subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
// @else
    for (var q = 0u; q < TM / 4; q++) {
      av[q] = a_tile[a_base + k * a_row + lid.y + q * (TILE_M / TM)];
    }
// @endif
    for (var q = 0u; q < TN / 4; q++) {
      bv[q] = b_tile[b_base + k * b_row + lid.x + q * (TILE_N / TN)];
    }
    for (var i = 0u; i < TM; i++) {
      let ai = vec4f(av[i / 4][i % 4]);
      for (var q = 0u; q < TN / 4; q++) {
        (*acc)[i][q] = fma(ai, bv[q], (*acc)[i][q]);
      }
    }
  }
}

// The row of y that acc[i] holds, for a workgroup whose tile starts at row0.
fn acc_row(row0: u32, i: u32, lid: vec3u) -> u32 {
  return row0 + (lid.y + (i / 4) * (TILE_M / TM)) * 4 + i % 4;
}
