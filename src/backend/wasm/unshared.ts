// The kernel module for a page without shared memory: the same bytes with its imported memory declared unshared.
// Browsers gate shared WebAssembly memory on cross-origin isolation (Firefox and Safari refuse to create one without
// it), and a module importing a shared memory cannot link to a plain one; one flag byte is the only difference.
import { BackendError } from '../../errors.js';

/** Reads an unsigned LEB128 at `at`: its value and the offset after it. */
function leb(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = b[at++];
    if (byte === undefined) throw new BackendError('wasm: the kernel module ends inside a number');
    v += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return [v, at];
  }
}

const skipName = (b: Uint8Array, at: number): number => {
  const [n, next] = leb(b, at);
  return next + n;
};

/**
 * A copy of the module `bytes` whose imported memory is not shared (its limits flag 0x03, shared with a maximum,
 * becomes 0x01). The kernels' atomic loads and compare-exchanges are valid on an unshared memory too (one thread).
 */
export function unsharedModule(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const b = bytes.slice();
  let at = 8; // magic and version
  while (at < b.length) {
    const id = b[at]!;
    const [size, body] = leb(b, at + 1);
    if (id === 2) {
      let [count, p] = leb(b, body);
      for (; count > 0; count--) {
        p = skipName(b, skipName(b, p)); // module and field names
        const kind = b[p++];
        if (kind === 2) {
          if (b[p] !== 0x03)
            throw new BackendError(
              `wasm: the kernel module's memory import has flags ${b[p]}; expected 0x03 (shared, with a maximum)`,
            );
          b[p] = 0x01;
          return b;
        }
        if (kind === 0)
          p = leb(b, p)[1]; // function: type index
        else if (kind === 1)
          p = limitsEnd(b, p + 1); // table: reference type, limits
        else if (kind === 3)
          p += 2; // global: value type, mutability
        else throw new BackendError(`wasm: the kernel module imports an unknown kind ${kind}`);
      }
    }
    at = body + size;
  }
  throw new BackendError('wasm: the kernel module imports no memory');
}

function limitsEnd(b: Uint8Array, p: number): number {
  const flags = b[p]!;
  p = leb(b, p + 1)[1];
  return flags & 1 ? leb(b, p)[1] : p;
}
