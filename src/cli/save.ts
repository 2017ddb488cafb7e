// The end of a training run: its weights written atomically, or, when that fails, rescued elsewhere.
import { FileError } from '../errors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../platform/fs.js';

/** Writes `bytes` to `out`; if that fails, rescues them (see {@link rescue}) and throws the error that says where. */
export function saveOrRescue(out: string, bytes: Uint8Array, model: string): void {
  try {
    writeFileAtomic(out, bytes);
  } catch (e) {
    throw rescue(e as FileError, bytes, model);
  }
}

/**
 * After a save failed at the end of a run (the folder went away, the disk filled), the weights go to the current
 * folder or else the system's temporary folder, under a timestamped name; the error returned says where (or that
 * neither worked), so the command still exits non-zero.
 */
function rescue(e: FileError, bytes: Uint8Array, model: string): FileError {
  const name = `wgnn-${model}-rescued-${new Date().toISOString().replace(/[:.]/g, '-')}.safetensors`;
  const tried: string[] = [];
  for (const dir of [process.cwd(), tmpdir()]) {
    const file = join(dir, name);
    try {
      writeFileAtomic(file, bytes);
      return new FileError(`${e.message}; the trained weights were written to ${file} instead`, e.path, e.code);
    } catch (r) {
      tried.push((r as Error).message);
    }
  }
  return new FileError(
    `${e.message}; writing the trained weights elsewhere failed too (${tried.join('; ')})`,
    e.path,
    e.code,
  );
}
