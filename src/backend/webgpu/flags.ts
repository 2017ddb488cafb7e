// WebGPU's flag values (fixed by the spec), so modules can use them before the `webgpu` globals are installed.
export const BufferUsage = {
  MAP_READ: 1,
  MAP_WRITE: 2,
  COPY_SRC: 4,
  COPY_DST: 8,
  UNIFORM: 64,
  STORAGE: 128,
  QUERY_RESOLVE: 512,
} as const;
export const ShaderStage = { COMPUTE: 4 } as const;
export const MapMode = { READ: 1, WRITE: 2 } as const;
