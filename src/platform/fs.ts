// Node file access: the one door to node:fs for the engine (weights, checkpoints, dataset caches). Browser-reachable
// code (io/, nn/) loads this module lazily, `await import('../platform/fs.js')`, only when given a path.
// NOTE: namespace imports of node: modules, so a browser bundle that reaches this file still builds (Vite stubs them);
// there every function throws a FileError saying a path needs Node.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileError } from '../errors.js';

const inNode = (): boolean =>
  typeof process !== 'undefined' && !!process.versions?.node && typeof fs.openSync === 'function';

/** A FileError for `op` on `file`, carrying the system error's code and message. */
function fileError(op: string, file: string, e: unknown): FileError {
  const err = e as NodeJS.ErrnoException;
  return new FileError(`${op} ${file}: ${err.message ?? String(e)}`, file, err.code);
}

function needNode(op: string, file: string): void {
  if (!inNode())
    throw new FileError(
      `${op} ${file}: file paths need Node; in a browser pass or take bytes instead`,
      file,
      undefined,
    );
}

/**
 * The bytes of a regular file. A missing or unreadable file, or one that is not a regular file (a folder, a device
 * such as /dev/zero, a pipe: they would be read without end), is a FileError naming `op` and the path; so is a file
 * over `maxBytes` (code EFBIG), refused from its size before it is read.
 */
export async function readFile(file: string, op = 'readFile', maxBytes = Infinity): Promise<Uint8Array> {
  needNode(op, file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    // NOTE: non-blocking, so opening a pipe with no writer does not wait for one before the check below refuses it.
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) throw new FileError(`${op}: cannot read ${file}: not a regular file`, file, undefined);
    if (st.size > maxBytes)
      throw new FileError(`${op}: ${file} is ${st.size} bytes, over the limit of ${maxBytes} bytes`, file, 'EFBIG');
    const b = await handle.readFile();
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw e instanceof FileError ? e : fileError(`${op}: cannot read`, file, e);
  } finally {
    await handle?.close();
  }
}

/**
 * The names of the regular files in the folder `dir` (not its links, subfolders or devices), sorted by UTF-16 code
 * unit so the order is the same everywhere. A missing folder, or one that cannot be listed, is a FileError naming
 * `op`, the path and the system's code (ENOENT, ENOTDIR, EACCES).
 */
export async function listFiles(dir: string, op = 'listFiles'): Promise<string[]> {
  needNode(op, dir);
  try {
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (e) {
    throw fileError(`${op}: cannot list`, dir, e);
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
 * Temporary files of `file` that a killed writer left behind are removed first (see `removeStaleTemps`).
 * NOTE: synchronous, so a synchronous loader (the MNIST cache) can use it too; the async callers await it anyway.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array, opts: { mkdir?: boolean } = {}): void {
  needNode('writeFileAtomic', file);
  const dir = path.dirname(file);
  const tmp = tempName(file);
  let made = false; // the temporary file exists
  try {
    if (opts.mkdir) fs.mkdirSync(dir, { recursive: true });
    removeStaleTemps(file);
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

/**
 * Checks, before long work that ends in writing `file` (a training run), that it can be written: makes and removes
 * a temporary file beside it, as `writeFileAtomic` would. A missing folder, a read-only one, or a folder at `file`
 * is a FileError naming the path and the reason. Removes stale temporary files of `file` first.
 */
export function checkWritable(file: string): void {
  needNode('checkWritable', file);
  if (file === '') throw new FileError('checkWritable: the path is empty; expected a file name', file, undefined);
  removeStaleTemps(file);
  const tmp = tempName(file);
  try {
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    }
    fs.closeSync(fs.openSync(tmp, 'wx'));
    fs.rmSync(tmp, { force: true });
  } catch (e) {
    const { code, message } = e as NodeJS.ErrnoException;
    const dir = path.dirname(file);
    const why =
      code === 'ENOENT'
        ? `the folder ${dir} does not exist`
        : code === 'ENOTDIR'
          ? `${dir} is not a folder`
          : code === 'EACCES' || code === 'EPERM'
            ? `no permission to create files in ${dir}`
            : code === 'EROFS'
              ? `${dir} is on a read-only file system`
              : code === 'EISDIR'
                ? 'it is a folder'
                : (message ?? String(e));
    throw new FileError(`${file} cannot be written: ${why}${code ? ` (${code})` : ''}`, file, code);
  }
}

// Temporary files are named `<target>.<host>.<pid>.<random>.tmp`: the host and pid say whose they are.
const HOST_RE = /[^A-Za-z0-9-]/g;
const thisHost = (): string => (os.hostname?.() ?? '').replace(HOST_RE, '-').slice(0, 63) || 'host';
const TEMP_RE = /^(?:([A-Za-z0-9-]{1,63})\.)?([0-9]{1,10})\.([a-z0-9]{1,16})\.tmp$/;
/** Temporary files older than this are stale whoever made them: no write of ours takes a day. */
export const STALE_TEMP_MS = 24 * 3600 * 1000;

function tempName(file: string): string {
  return `${file}.${thisHost()}.${process.pid}.${Math.random().toString(36).slice(2, 12) || '0'}.tmp`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // someone else's process
  }
}

/**
 * Removes temporary files that a writer of `file` killed mid-write left beside it, and returns their names. Only
 * files in `file`'s folder named `<its name>.<host>.<pid>.<random>.tmp` (or `<its name>.<pid>.<random>.tmp`, the
 * older form), regular files (no links), are candidates, and one is removed only when it cannot belong to a write in
 * progress: made on this host by a pid that is not running (not this process: another thread may be writing), or
 * last modified over STALE_TEMP_MS ago (another host's, or the older form, whose host is unknown). A pid reused by
 * an unrelated process keeps its file until that age. Best effort: a file that cannot be listed or removed is left.
 */
export function removeStaleTemps(file: string): string[] {
  needNode('removeStaleTemps', file);
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  const host = thisHost();
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = TEMP_RE.exec(name.slice(prefix.length));
    if (!m) continue;
    const full = path.join(dir, name);
    try {
      const st = fs.lstatSync(full);
      if (!st.isFile()) continue;
      const pid = Number(m[2]);
      const dead = m[1] === host && pid > 0 && pid !== process.pid && !alive(pid);
      if (!dead && !(now - st.mtimeMs > STALE_TEMP_MS)) continue;
      fs.unlinkSync(full);
      removed.push(name);
    } catch {
      // gone meanwhile, or not ours to remove: leave it
    }
  }
  return removed;
}

// NOTE: Windows cannot open a folder for fsync (EPERM, EISDIR); there the rename is the last step.
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EACCES')
      throw fileError('writeFileAtomic: fsync of the folder', dir, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
