// The ONNX test models (made by the committed scripts/onnx_models.py, as PyTorch exports them) and the fuzz loop over
// them, shared by test/interop-onnx.test.ts (4000 seeded mutations, every run) and test/interop-onnx-fuzz.test.ts
// (6000 more under another seed: the slow tier), 10⁴ in all.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WgnnError } from '../src/errors.js';
import { loadOnnx } from '../src/interop/onnx.js';
import { Rng } from '../src/rng.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'onnx_models.py');

/** Runs scripts/onnx_models.py into a new folder; returns the folder and the opset the script printed. */
export function makeOnnxModels(): { dir: string; opset: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wgnn-onnx-'));
  const opset = execFileSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { dir, opset: opset.trim() };
}

export const removeOnnxModels = (dir: string): void => rmSync(dir, { recursive: true, force: true });
export const onnxFile = (dir: string, name: string): Uint8Array =>
  new Uint8Array(readFileSync(join(dir, `${name}.onnx`)));

/** Loads (which runs the graph once on zeros where its input shape is fixed); anything but a WgnnError fails. */
function tryLoad(bytes: Uint8Array, what: string): 'ok' | 'error' {
  try {
    loadOnnx(bytes).dispose();
    return 'ok';
  } catch (e) {
    if (!(e instanceof WgnnError)) throw new Error(`${what}: ${String(e)}`, { cause: e });
    return 'error';
  }
}

/**
 * Seeded byte mutations of each model (1-4 edits each, half of them in the first 4 KiB, where the node lists,
 * attributes and dims are); with `structure`, first the truncations at 40 offsets and a wire type 7 tag (none such
 * exists) at each of the first 16 bytes. Returns how many loaded and how many gave a typed error.
 */
export function fuzzOnnx(
  models: Record<string, Uint8Array>,
  rounds: Record<string, number>,
  seed: number,
  structure: boolean,
): { ok: number; error: number } {
  const counts = { ok: 0, error: 0 };
  const rng = new Rng(seed);
  for (const [name, good] of Object.entries(models)) {
    if (structure) {
      for (let k = 0; k < 40; k++) counts[tryLoad(good.slice(0, Math.floor((good.length * k) / 40)), `${name} cut`)]++;
      for (let i = 0; i < 16; i++) {
        const b = good.slice();
        b[i] = (b[i]! & 0xf8) | 7;
        counts[tryLoad(b, `${name} wire type at ${i}`)]++;
      }
    }
    for (let k = 0; k < rounds[name]!; k++) {
      const b = good.slice();
      const edits = 1 + rng.int(0, 4);
      for (let e = 0; e < edits; e++) {
        const at = rng.uniform() < 0.5 ? rng.int(0, Math.min(b.length, 4096)) : rng.int(0, b.length);
        b[at] = rng.uniform() < 0.5 ? rng.int(0, 256) : b[at]! ^ (1 << rng.int(0, 8));
      }
      counts[tryLoad(b, `${name} mutation ${k} (seed ${seed})`)]++;
    }
  }
  return counts;
}
