// The benchmark suite: `npm run bench -- [family ...] [--quick] [--sizes 256,512] [--batch n] [--no-peers] [--json out.json]`.
// Runs each named family (all by default) on the WebGPU adapter, prints its table, and optionally writes every row as JSON.
import { writeFileSync } from 'node:fs';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { createWebGpuBackend } from '../src/init.js';
import { benchConv } from './conv.js';
import { benchMatmul } from './matmul.js';

export interface BenchOptions {
  /** Problem sizes, overriding the family's defaults. */
  sizes?: number[];
  /** Small sizes only: validates every kernel and finishes in seconds (CI). */
  quick?: boolean;
  /** Batch size, overriding the family's defaults (conv). */
  batch?: number;
  /** Also time the peer libraries (TF.js) in the same run; default true, `--no-peers` turns it off. */
  peers?: boolean;
}

type Family = (gpu: WebGpuBackend, opts: BenchOptions) => Promise<object[]>;

const FAMILIES: Record<string, Family> = {
  matmul: benchMatmul,
  conv: benchConv,
};

const USAGE = `usage: bench [${Object.keys(FAMILIES).join('|')} ...] [--quick] [--sizes n,n,...] [--batch n] [--no-peers] [--json path]`;

function parseArgs(argv: string[]): { families: string[]; opts: BenchOptions; json?: string } {
  const families: string[] = [];
  const opts: BenchOptions = {};
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json' || arg === '--sizes' || arg === '--batch') {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      if (arg === '--json') json = v;
      else if (arg === '--batch') {
        opts.batch = Number(v);
        if (!Number.isInteger(opts.batch) || opts.batch <= 0) throw new Error(`--batch: bad size '${v}'\n${USAGE}`);
      } else {
        opts.sizes = v.split(',').map(Number);
        if (!opts.sizes.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`--sizes: bad list '${v}'\n${USAGE}`);
      }
    } else if (arg === '--quick') opts.quick = true;
    else if (arg === '--no-peers') opts.peers = false;
    else if (arg in FAMILIES) families.push(arg);
    else throw new Error(`unknown benchmark '${arg}'\n${USAGE}`);
  }
  return { families: families.length ? families : Object.keys(FAMILIES), opts, json };
}

async function main(): Promise<void> {
  const { families, opts, json } = parseArgs(process.argv.slice(2));
  const gpu = await createWebGpuBackend();
  if (!gpu) throw new Error('no WebGPU adapter (on Linux without a GPU: bash scripts/setup-machine.sh for Mesa lavapipe)');
  console.log(`adapter: ${gpu.description}`);
  const results: Record<string, object[]> = {};
  try {
    for (const f of families) {
      console.log('');
      results[f] = await FAMILIES[f]!(gpu, opts);
    }
  } finally {
    gpu.destroy();
  }
  if (json) {
    writeFileSync(json, JSON.stringify({ adapter: gpu.description, date: new Date().toISOString(), results }, null, 2));
    console.log(`\nwrote ${json}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
