// Node file access: the one door to node:fs for the engine (weights, checkpoints, dataset caches). Browser-reachable
// code (io/, nn/) loads this module lazily, `await import('../platform/fs.js')`, only when given a path.
// NOTE: namespace imports of node: modules, so a browser bundle that reaches this file still builds (Vite stubs them);
// there every function throws a FileError saying a path needs Node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from '../errors.js';

const inNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node && typeof fs.openSync === 'function';

/** A FileError for `op` on `file`, carrying the system error's code and message. */
function fileError(op: string, file: string, e: unknown): FileError {
  const err = e as NodeJS.ErrnoException;
  return new FileError(`${op} ${file}: ${err.message ?? String(e)}`, file, err.code);
}

function needNode(op: string, file: string): void {
  if (!inNode()) throw new FileError(`${op} ${file}: file paths need Node; in a browser pass or take bytes instead`, file, undefined);
}

/**
 * The bytes of a regular file. A missing or unreadable file, or one that is not a regular file (a folder, a device
 * such as /dev/zero, a pipe: they would be read without end), is a FileError naming `op` and the path.
 */
export async function readFile(file: string, op = 'readFile'): Promise<Uint8Array> {
  needNode(op, file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    // NOTE: non-blocking, so opening a pipe with no writer does not wait for one before the check below refuses it.
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) throw new FileError(`${op}: cannot read ${file}: not a regular file`, file, undefined);
    const b = await handle.readFile();
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw e instanceof FileError ? e : fileError(`${op}: cannot read`, file, e);
  } finally {
    await handle?.close();
  }
}

/** Whether something exists at `file` (and can be seen by this process). */
export async function fileExists(file: string): Promise<boolean> {
  needNode('fileExists', file);
  return fs.promises.access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Replaces `file` with `bytes` so that a reader, or the file after a crash or a power cut, holds either the old
 * contents or the new ones, never part of them: the bytes go to a temporary file in the same folder, which is
 * fsynced, renamed over `file`, and the folder fsynced (so the rename itself is on disk). With `mkdir`, missing
 * folders are made first. On failure the temporary file is removed and a FileError names the path and the reason.
 * NOTE: synchronous, so a synchronous loader (the MNIST cache) can use it too; the async callers await it anyway.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array, opts: { mkdir?: boolean } = {}): void {
  needNode('writeFileAtomic', file);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  let made = false; // the temporary file exists
  try {
    if (opts.mkdir) fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(tmp, 'wx');
    made = true;
    try {
      for (let at = 0; at < bytes.length; ) at += fs.writeSync(fd, bytes, at, bytes.length - at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    made = false;
  } catch (e) {
    if (made) fs.rmSync(tmp, { force: true });
    throw fileError('writeFileAtomic', file, e);
  }
  syncDir(dir);
}

// NOTE: Windows cannot open a folder for fsync (EPERM, EISDIR); there the rename is the last step.
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EACCES') throw fileError('writeFileAtomic: fsync of the folder', dir, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
