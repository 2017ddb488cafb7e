// platform/fs.ts, the one door to node:fs: the atomic write (temp file beside the target, fsync, rename, fsync of the
// folder, in that order), which leaves the old file whole and no temp file when a write fails, and typed errors.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileError } from '../src/errors.js';
import {
  STALE_TEMP_MS,
  checkWritable,
  fileExists,
  readFile,
  removeStaleTemps,
  writeFileAtomic,
} from '../src/platform/fs.js';

let root: string;
let dir: string; // a fresh folder per test
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'wgnn-fs-'));
});
beforeEach(async () => {
  dir = await mkdtemp(join(root, 't-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// node:fs's functions, replaced for one test and put back after (syncBuiltinESMExports carries a change of the
// module object over to the ES module namespace that platform/fs.ts imports).
const saved = new Map<string, unknown>();
function patch<K extends 'openSync' | 'writeSync' | 'fsyncSync' | 'renameSync'>(
  name: K,
  make: (orig: (typeof fs)[K]) => (typeof fs)[K],
): void {
  const mod = fs as unknown as { default: Record<string, unknown> };
  if (!saved.has(name)) saved.set(name, mod.default[name]);
  mod.default[name] = make(saved.get(name) as (typeof fs)[K]);
  syncBuiltinESMExports();
}
afterEach(() => {
  const mod = fs as unknown as { default: Record<string, unknown> };
  for (const [name, f] of saved) mod.default[name] = f;
  saved.clear();
  syncBuiltinESMExports();
});

const bytes = (...xs: number[]) => Uint8Array.from(xs);

describe('platform/fs', () => {
  it('write, overwrite, read back; nothing left beside the file', async () => {
    const f = join(dir, 'a.bin');
    expect(await fileExists(f)).toBe(false);
    writeFileAtomic(f, bytes(1, 2, 3));
    expect(await readFile(f)).toEqual(bytes(1, 2, 3));
    writeFileAtomic(f, bytes(9));
    expect(await readFile(f)).toEqual(bytes(9));
    expect(await fileExists(f)).toBe(true);
    expect(await readdir(dir)).toEqual(['a.bin']);
  });

  it('the order on disk: temp file in the same folder, fsync it, rename over the target, fsync the folder', async () => {
    const f = join(dir, 'order.bin');
    const log: string[] = [];
    const fds = new Map<number, string>();
    const name = (p: string) =>
      p === dir ? 'dir' : p === f ? 'target' : p.startsWith(join(dir, 'order.bin.')) && p.endsWith('.tmp') ? 'tmp' : p;
    patch(
      'openSync',
      (orig) =>
        ((p: string, ...rest: unknown[]) => {
          const fd = (orig as (...a: unknown[]) => number)(p, ...rest);
          fds.set(fd, name(p));
          log.push(`open ${name(p)}`);
          return fd;
        }) as typeof fs.openSync,
    );
    patch('fsyncSync', (orig) => (fd: number) => {
      log.push(`fsync ${fds.get(fd)}`);
      orig(fd);
    });
    patch('renameSync', (orig) => (a: fs.PathLike, b: fs.PathLike) => {
      log.push(`rename ${name(String(a))} ${name(String(b))}`);
      orig(a, b);
    });
    writeFileAtomic(f, bytes(4, 5));
    expect(log).toEqual(['open tmp', 'fsync tmp', 'rename tmp target', 'open dir', 'fsync dir']);
    expect(await readFile(f)).toEqual(bytes(4, 5));
  });

  it('a write that fails midway (disk full) leaves the old file whole, no temp file, and throws FileError ENOSPC', async () => {
    const f = join(dir, 'full.bin');
    await writeFile(f, 'old contents');
    let calls = 0;
    patch(
      'writeSync',
      (orig) =>
        ((fd: number, buf: Uint8Array, off: number, len: number) => {
          if (calls++ > 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          return (orig as (...a: unknown[]) => number)(fd, buf, off, Math.min(len, 3)); // a short write, then the failure
        }) as typeof fs.writeSync,
    );
    let err: unknown;
    try {
      writeFileAtomic(f, new Uint8Array(1000).fill(7));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).code).toBe('ENOSPC');
    expect((err as FileError).path).toBe(f);
    expect((err as Error).message).toMatch(/full\.bin: ENOSPC/);
    expect(new TextDecoder().decode(await readFile(f))).toBe('old contents');
    expect(await readdir(dir)).toEqual(['full.bin']);
  });

  it('a missing folder: FileError ENOENT naming the path, no temp file; with mkdir the folders are made', async () => {
    const f = join(dir, 'no-such-dir', 'x.bin');
    expect(() => writeFileAtomic(f, bytes(1))).toThrow(FileError);
    expect(() => writeFileAtomic(f, bytes(1))).toThrow(/writeFileAtomic .*no-such-dir.*x\.bin: ENOENT/);
    expect(await readdir(dir)).toEqual([]);
    writeFileAtomic(f, bytes(1), { mkdir: true });
    expect(await readFile(f)).toEqual(bytes(1));
  });

  it('readFile of a missing file: FileError with code ENOENT', async () => {
    const f = join(dir, 'missing.bin');
    await expect(readFile(f)).rejects.toBeInstanceOf(FileError);
    await expect(readFile(f)).rejects.toMatchObject({ code: 'ENOENT', path: f });
  });

  it('readFile of what is not a regular file (a folder, /dev/zero through a link, a pipe): FileError at once', async () => {
    const zero = join(dir, 'zero.safetensors');
    await symlink('/dev/zero', zero);
    const fifo = join(dir, 'fifo.bin');
    execFileSync('mkfifo', [fifo]);
    for (const f of [dir, zero, fifo]) {
      const t0 = performance.now();
      await expect(readFile(f, 'Sequential.load')).rejects.toThrow(
        /^Sequential\.load: cannot read .*: (not a regular file|EISDIR)/,
      );
      expect(performance.now() - t0).toBeLessThan(1000);
    }
  });

  it('checkWritable: a missing folder or a folder at the path is a FileError naming it; a writable path is left as it was', async () => {
    const f = join(dir, 'out.safetensors');
    checkWritable(f);
    expect(await readdir(dir)).toEqual([]);
    expect(() => checkWritable('')).toThrow(/checkWritable: the path is empty/);
    const missing = join(dir, 'no-such-dir', 'out.safetensors');
    expect(() => checkWritable(missing)).toThrow(FileError);
    expect(() => checkWritable(missing)).toThrow(
      /no-such-dir.out\.safetensors cannot be written: the folder .*no-such-dir does not exist \(ENOENT\)/,
    );
    await mkdir(join(dir, 'a-folder'));
    expect(() => checkWritable(join(dir, 'a-folder'))).toThrow(/a-folder cannot be written: it is a folder \(EISDIR\)/);
    await writeFile(f, 'kept');
    checkWritable(f);
    expect(new TextDecoder().decode(await readFile(f))).toBe('kept');
    expect((await readdir(dir)).sort()).toEqual(['a-folder', 'out.safetensors']);
  });

  it('stale temporary files of a killed writer are removed at the next write: only ours, for that file, of dead pids or a day old', async () => {
    const host =
      hostname()
        .replace(/[^A-Za-z0-9-]/g, '-')
        .slice(0, 63) || 'host';
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: no process has this pid now
    const f = join(dir, 'ck.safetensors');
    const names = {
      deadHere: `ck.safetensors.${host}.${dead}.k3j9.tmp`, // removed: this host, pid not running
      mine: `ck.safetensors.${host}.${process.pid}.a1.tmp`, // kept: this process (another thread may be writing it)
      live: `ck.safetensors.${host}.${process.ppid}.a2.tmp`, // kept: the pid runs
      otherHost: `ck.safetensors.elsewhere-7.${dead}.a3.tmp`, // kept: another machine's pid cannot be checked here
      otherHostOld: `ck.safetensors.elsewhere-7.${dead}.a4.tmp`, // removed: a day old
      olderForm: `ck.safetensors.${dead}.a5.tmp`, // kept: the older name, host unknown
      olderFormOld: `ck.safetensors.${dead}.a6.tmp`, // removed: a day old
      otherTarget: `ck.safetensors.bak.${host}.${dead}.a7.tmp`, // kept: another file's
      notOurs: `ck.safetensors.${host}.${dead}.a8.tmp.keep`, // kept: not our pattern
      folder: `ck.safetensors.${host}.${dead}.a9.tmp`, // kept: a folder
      link: `ck.safetensors.${host}.${dead}.b1.tmp`, // kept: a link (its target too)
    };
    for (const [k, n] of Object.entries(names)) {
      if (k === 'folder') await mkdir(join(dir, n));
      else if (k === 'link') await symlink(join(dir, names.mine), join(dir, n));
      else await writeFile(join(dir, n), 'partial');
    }
    const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);
    for (const n of [names.otherHostOld, names.olderFormOld]) await utimes(join(dir, n), old, old);
    writeFileAtomic(f, bytes(1, 2));
    const removed = [names.deadHere, names.otherHostOld, names.olderFormOld];
    expect((await readdir(dir)).sort()).toEqual(
      [...Object.values(names).filter((n) => !removed.includes(n)), 'ck.safetensors'].sort(),
    );
    expect(await readFile(f)).toEqual(bytes(1, 2));
    // checkWritable (fit runs it before training, resumed or not) cleans up the same way.
    await writeFile(join(dir, names.deadHere), 'partial');
    checkWritable(f);
    expect(await fileExists(join(dir, names.deadHere))).toBe(false);
    expect(removeStaleTemps(f)).toEqual([]);
  });
});
