// Text data: the char tokenizer (code points, round trips, typed errors, hostile JSON), UTF-8 corpora from files
// (binary, empty, invalid and missing files refused), Debian's fortunes, and token windows (x/y shifted by one,
// seeded, inside the array, split as nanoGPT).
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArgumentError, FileError, ParseError, VocabularyError } from '../src/errors.js';
import {
  CharTokenizer,
  FORTUNES_DIR,
  TokenDataset,
  parseFortunes,
  readFortunes,
  readText,
  textDataset,
} from '../src/data/index.js';
import { Rng } from '../src/rng.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'wgnn-text-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('CharTokenizer', () => {
  it('fromText: the distinct code points sorted by code point; an emoji (two UTF-16 units) is one token', () => {
    const text = 'héllo wörld 😀 日本 😀';
    const tok = CharTokenizer.fromText(text);
    expect(tok.chars).toBe(' dhlorwéö日本😀');
    expect(tok.vocabSize).toBe(12);
    const ids = tok.encode('😀hé');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(Array.from(ids)).toEqual([11, 2, 7]);
    expect(tok.encode(text).length).toBe([...text].length);
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([11, 11, 0])).toBe('😀😀 ');
    expect(tok.encode('')).toEqual(new Int32Array(0));
    expect(tok.decode([])).toBe('');
  });

  it('round trips a long text (decode builds it in chunks) and control characters', () => {
    const text = Array.from({ length: 20000 }, (_, i) => String.fromCodePoint([7, 9, 10, 65, 0x1f600][i % 5]!)).join(
      '',
    );
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocabSize).toBe(5);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('encode: a character outside the vocabulary is a VocabularyError naming it (U+ code) and its position in code points', () => {
    const tok = CharTokenizer.fromText('abc 😀');
    expect(() => tok.encode('ab\u0007')).toThrow(VocabularyError);
    expect(() => tok.encode('ab\u0007')).toThrow(ArgumentError);
    expect(() => tok.encode('ab\u0007')).toThrow(
      /encode: the character U\+0007 at position 2 \(in code points\) is not in the vocabulary of 5 characters/,
    );
    // the position counts the emoji as one
    expect(() => tok.encode('😀😀az')).toThrow(/the character 'z' \(U\+007A\) at position 3/);
    expect(() => tok.encode('a🙂')).toThrow(/'🙂' \(U\+1F642\) at position 1/);
    expect(() => tok.encode(5 as never)).toThrow(ArgumentError);
  });

  it('decode: an id outside 0..V-1 (or not an integer) is a VocabularyError naming it and its index', () => {
    const tok = CharTokenizer.fromText('abc');
    for (const [ids, bad, at] of [
      [[0, 3], '3', 1],
      [[-1], '-1', 0],
      [[1, 2, 1.5], '1.5', 2],
      [[NaN], 'NaN', 0],
    ] as const) {
      expect(() => tok.decode(ids), String(ids)).toThrow(VocabularyError);
      expect(() => tok.decode(ids), String(ids)).toThrow(
        `decode: id ${bad} at index ${at} is outside the vocabulary 0..2`,
      );
    }
    expect(tok.decode(Int32Array.from([2, 0]))).toBe('ca');
  });

  it('fromText: more distinct characters than maxVocab is a VocabularyError naming both; empty text and bad options are ArgumentErrors', () => {
    expect(CharTokenizer.fromText('abcde', { maxVocab: 5 }).vocabSize).toBe(5);
    expect(() => CharTokenizer.fromText('abcde', { maxVocab: 4 })).toThrow(VocabularyError);
    expect(() => CharTokenizer.fromText('abcde', { maxVocab: 4 })).toThrow(
      /the text has 5 distinct characters, over the limit of 4 \(maxVocab\)/,
    );
    // default limit 1024
    const many = Array.from({ length: 1025 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
    expect(() => CharTokenizer.fromText(many)).toThrow(/1025 distinct characters, over the limit of 1024/);
    expect(CharTokenizer.fromText(many.slice(1)).vocabSize).toBe(1024);
    expect(() => CharTokenizer.fromText('')).toThrow(ArgumentError);
    expect(() => CharTokenizer.fromText('')).toThrow(/the text is empty/);
    for (const bad of [0, -1, 1.5, NaN, '8'])
      expect(() => CharTokenizer.fromText('ab', { maxVocab: bad as never }), String(bad)).toThrow(/maxVocab/);
    expect(() => CharTokenizer.fromText('ab', { maxvocab: 3 } as never)).toThrow(/unknown option "maxvocab"/);
  });

  it('toJSON / fromJSON round trip through JSON text; fromJSON keeps the order it is given', () => {
    const tok = CharTokenizer.fromText('zebra 😀 é\n');
    const json = JSON.parse(JSON.stringify(tok));
    expect(json).toEqual({ kind: 'char', chars: '\n aberzé😀' });
    const back = CharTokenizer.fromJSON(json);
    expect(back.chars).toBe(tok.chars);
    expect(Array.from(back.encode('zé😀'))).toEqual(Array.from(tok.encode('zé😀')));
    const custom = CharTokenizer.fromJSON({ kind: 'char', chars: 'cab' });
    expect(Array.from(custom.encode('abc'))).toEqual([1, 2, 0]);
  });

  it('fromJSON treats its input as hostile: each bad form is a ParseError saying what is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [null, /the tokenizer must be an object, got null/],
      [[], /the tokenizer must be an object/],
      ['{"kind":"char","chars":"ab"}', /the tokenizer must be an object/],
      [{ kind: 'bpe', chars: 'ab' }, /kind "bpe"; expected "char"/],
      [{ chars: 'ab' }, /kind undefined; expected "char"/],
      [{ kind: 'char' }, /chars must be a string, got undefined/],
      [{ kind: 'char', chars: 5 }, /chars must be a string, got 5/],
      [{ kind: 'char', chars: ['a', 'b'] }, /chars must be a string/],
      [{ kind: 'char', chars: '' }, /chars is empty/],
      [{ kind: 'char', chars: 'abca' }, /chars holds 'a' \(U\+0061\) twice, as ids 0 and 3/],
      [{ kind: 'char', chars: '😀x😀' }, /'😀' \(U\+1F600\) twice, as ids 0 and 2/],
      [{ kind: 'char', chars: 'ab', extra: 1 }, /unknown option "extra"/],
      [JSON.parse('{"kind":"char","chars":"ab","__proto__":{"x":1}}'), /unknown option "__proto__"/],
      [
        { kind: 'char', chars: 'x'.repeat(5_000_000) },
        /over 1024 characters \(5000000 UTF-16 units\), over the limit of 1024/,
      ],
    ];
    for (const [json, msg] of cases) {
      expect(() => CharTokenizer.fromJSON(json), JSON.stringify(json)?.slice(0, 60)).toThrow(ParseError);
      expect(() => CharTokenizer.fromJSON(json), JSON.stringify(json)?.slice(0, 60)).toThrow(msg);
    }
    const over = { kind: 'char', chars: 'abcd' };
    expect(() => CharTokenizer.fromJSON(over, { maxVocab: 3 })).toThrow(
      /a vocabulary of 4 characters, over the limit of 3 \(maxVocab\)/,
    );
    expect(CharTokenizer.fromJSON(over, { maxVocab: 4 }).vocabSize).toBe(4);
  });
});

describe('readText', () => {
  const file = async (name: string, bytes: Uint8Array | string) => {
    const f = join(root, name);
    await writeFile(f, bytes);
    return f;
  };

  it('reads UTF-8 text (non-ASCII kept, a byte-order mark dropped)', async () => {
    const f = await file('ok.txt', 'first line\nzweite Zeile: ä ö ü 😀\n');
    expect(await readText(f)).toBe('first line\nzweite Zeile: ä ö ü 😀\n');
    const bom = await file('bom.txt', new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]));
    expect(await readText(bom)).toBe('hi');
  });

  it('refuses binary (a NUL byte), empty and invalid UTF-8 files with a ParseError naming the file and what was expected', async () => {
    const bin = await file('model.bin', new Uint8Array([0x61, 0x62, 0x00, 0x63]));
    await expect(readText(bin)).rejects.toThrow(ParseError);
    await expect(readText(bin)).rejects.toThrow(`${bin}: a NUL byte at offset 2: a binary file; expected UTF-8 text`);
    const empty = await file('empty.txt', '');
    await expect(readText(empty)).rejects.toThrow(`${empty}: the file is empty; expected UTF-8 text`);
    const onlyBom = await file('bom-only.txt', new Uint8Array([0xef, 0xbb, 0xbf]));
    await expect(readText(onlyBom)).rejects.toThrow(ParseError);
    // Latin-1 'é' (0xE9) alone, then a truncated 3-byte sequence, then an overlong '/'
    for (const [name, bytes] of [
      ['latin1.txt', [0x63, 0x61, 0x66, 0xe9]],
      ['truncated.txt', [0x61, 0xe6, 0x97]],
      ['overlong.txt', [0xc0, 0xaf]],
    ] as const) {
      const f = await file(name, new Uint8Array(bytes));
      await expect(readText(f), name).rejects.toThrow(ParseError);
      await expect(readText(f), name).rejects.toThrow(
        `${f}: not UTF-8 (an invalid byte sequence); expected UTF-8 text`,
      );
    }
  });

  it('a missing file, a folder, or a file over maxBytes is a FileError naming the path', async () => {
    const missing = join(root, 'nope.txt');
    await expect(readText(missing)).rejects.toBeInstanceOf(FileError);
    await expect(readText(missing)).rejects.toMatchObject({ code: 'ENOENT', path: missing });
    await expect(readText(root)).rejects.toThrow(/readText: cannot read .*: not a regular file/);
    const f = await file('ten.txt', '0123456789');
    expect(await readText(f, { maxBytes: 10 })).toBe('0123456789');
    await expect(readText(f, { maxBytes: 9 })).rejects.toThrow(`readText: ${f} is 10 bytes, over the limit of 9 bytes`);
    await expect(readText(f, { maxBytes: 9 })).rejects.toMatchObject({ code: 'EFBIG' });
    await expect(readText(f, { maxBytes: 0 })).rejects.toThrow(ArgumentError);
    await expect(readText(f, { maxbytes: 1 } as never)).rejects.toThrow(/unknown option "maxbytes"/);
  });
});

describe('fortunes', () => {
  it('parseFortunes: the pieces between % lines, blank ones dropped, the last one with or without its % line', () => {
    expect(parseFortunes('one\n%\ntwo\nlines\n%\n')).toEqual(['one', 'two\nlines']);
    expect(parseFortunes('%\n%\n  \n%\nx\n\ny')).toEqual(['x\n\ny']);
    expect(parseFortunes('a\r\n%\r\nb\r\n')).toEqual(['a\r', 'b\r']);
    expect(parseFortunes('100%\n%%\n')).toEqual(['100%\n%%']);
  });

  it('readFortunes: the plain files in name order, each fortune followed by a % line; .dat indexes, .u8 links and subfolders skipped', async () => {
    const dir = join(root, 'fortunes');
    await mkdir(join(dir, 'off'), { recursive: true });
    await writeFile(join(dir, 'zen'), 'Last file.\n%\n');
    await writeFile(join(dir, 'art'), 'Art one.\n%\n\n%\nArt two,\nin two lines.'); // an empty one; no final %
    await writeFile(join(dir, 'art.dat'), new Uint8Array([0, 0, 0, 2, 0xff])); // binary: would be refused if read
    await symlink('art', join(dir, 'art.u8'));
    await writeFile(join(dir, 'off', 'rude'), 'Not this.\n%\n');
    expect(await readFortunes(dir)).toBe('Art one.\n%\nArt two,\nin two lines.\n%\nLast file.\n%\n');
    expect(await readFortunes(`${dir}/`)).toBe(await readFortunes(dir));
    // a binary fortune file is refused, named
    await writeFile(join(dir, 'broken'), new Uint8Array([0x61, 0]));
    await expect(readFortunes(dir)).rejects.toThrow(`${dir}/broken: a NUL byte at offset 1`);
  });

  it('readFortunes: a missing folder says to install the Debian package fortunes; a folder without fortune files too', async () => {
    const missing = join(root, 'no-fortunes');
    await expect(readFortunes(missing)).rejects.toBeInstanceOf(FileError);
    await expect(readFortunes(missing)).rejects.toMatchObject({ code: 'ENOENT', path: missing });
    await expect(readFortunes(missing)).rejects.toThrow(
      `readFortunes: ${missing} does not exist; install Debian's package \`fortunes\` (bash scripts/setup-machine.sh`,
    );
    const onlyDat = join(root, 'only-dat');
    await mkdir(onlyDat);
    await writeFile(join(onlyDat, 'x.dat'), 'x');
    await expect(readFortunes(onlyDat)).rejects.toThrow(/holds no fortune files; install Debian's package `fortunes`/);
  });

  it(`readFortunes() reads Debian's corpus in ${FORTUNES_DIR}: over 1 MB, under 256 characters, the same every time`, async () => {
    const text = await readFortunes();
    expect(text.length).toBeGreaterThan(1_000_000);
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocabSize).toBeLessThan(256);
    expect(tok.vocabSize).toBeGreaterThan(90); // printable ASCII and more
    expect(text.endsWith('\n%\n')).toBe(true);
    expect(text.split('\n%\n').length).toBeGreaterThan(10_000);
    expect(await readFortunes()).toBe(text);
    expect(tok.decode(tok.encode(text)) === text).toBe(true);
  });
});

describe('TokenDataset', () => {
  // token i at position i, so a window's tokens name its start
  const arange = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

  it('batch: x [B, T] and y the same windows shifted by one; every start 0..N-T-1 occurs and no window leaves the array', () => {
    const N = 20;
    const T = 4;
    const ds = new TokenDataset(arange(N), T);
    expect(ds.windows).toBe(16);
    const seen = new Set<number>();
    for (let step = 0; step < 50; step++) {
      const b = ds.batchAt(8, 7, step);
      expect(b.shape).toEqual([8, T]);
      expect(b.x).toBeInstanceOf(Int32Array);
      expect(b.y).toBeInstanceOf(Int32Array);
      expect(b.x.length).toBe(8 * T);
      for (let r = 0; r < 8; r++) {
        const s = b.starts[r]!;
        seen.add(s);
        for (let t = 0; t < T; t++) {
          expect(b.x[r * T + t]).toBe(s + t);
          expect(b.y[r * T + t]).toBe(s + t + 1);
        }
      }
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it('the batch at (seed, step) is a pure function of them; other seeds and steps give other batches', () => {
    const tokens = arange(1000);
    const a = new TokenDataset(tokens, 16);
    const b = new TokenDataset(tokens.slice(), 16);
    expect(b.batchAt(4, 3, 10)).toEqual(a.batchAt(4, 3, 10));
    expect(a.batchAt(4, 4, 10).starts).not.toEqual(a.batchAt(4, 3, 10).starts);
    expect(a.batchAt(4, 3, 11).starts).not.toEqual(a.batchAt(4, 3, 10).starts);
    // batches() from a step is batchAt of each step: a resumed run continues the stream
    const resumed = [...a.batches(4, { seed: 3, from: 9, steps: 3 })];
    expect(resumed).toEqual([9, 10, 11].map((s) => a.batchAt(4, 3, s)));
    const it0 = a.batches(4, { seed: 3 });
    expect(it0.next().value).toEqual(a.batchAt(4, 3, 0));
    // batch(rng) draws from the given generator
    expect(a.batch(4, new Rng(5))).toEqual(a.batch(4, new Rng(5)));
    expect(a.batch(4, new Rng(5)).starts).not.toEqual(a.batch(4, new Rng(6)).starts);
    // fixed evaluation batches
    const ev = a.evalBatches(4, 3, 1);
    expect(ev).toHaveLength(3);
    expect(ev).toEqual(a.evalBatches(4, 3, 1));
    expect(ev[2]).toEqual(a.batchAt(4, 1, 2));
    expect(a.evalBatches(4, 0)).toEqual([]);
  });

  it('split: the first floor(0.9 N) tokens train, the rest validate (views)', () => {
    const ds = new TokenDataset(arange(1005), 8);
    const { train, val } = ds.split();
    expect([train.length, val.length]).toEqual([904, 101]);
    expect([train.tokens[0], train.tokens[903], val.tokens[0], val.tokens[100]]).toEqual([0, 903, 904, 1004]);
    expect(train.tokens.buffer).toBe(ds.tokens.buffer);
    expect(val.blockSize).toBe(8);
    const half = ds.split(0.5);
    expect([half.train.length, half.val.length]).toEqual([502, 503]);
    // val batches stay inside val
    for (const b of val.evalBatches(16, 4, 2)) expect(Math.max(...b.y)).toBeLessThanOrEqual(1004);
    for (const b of val.evalBatches(16, 4, 2)) expect(Math.min(...b.x)).toBeGreaterThanOrEqual(904);
  });

  it('too few tokens for a window, a split leaving a part too short, and bad sizes are ArgumentErrors naming the lengths', () => {
    expect(new TokenDataset(arange(9), 8).windows).toBe(1);
    expect(Array.from(new TokenDataset(arange(9), 8).batchAt(3, 0, 0).starts)).toEqual([0, 0, 0]);
    expect(() => new TokenDataset(arange(8), 8)).toThrow(ArgumentError);
    expect(() => new TokenDataset(arange(8), 8)).toThrow(/8 tokens, fewer than blockSize \+ 1 = 9/);
    expect(() => new TokenDataset(arange(100), 10).split()).toThrow(
      /split\(0.9\) of 100 tokens leaves 90 for training and 10 for validation; each needs at least blockSize \+ 1 = 11/,
    );
    expect(new TokenDataset(arange(110), 10).split().val.length).toBe(11);
    expect(() => new TokenDataset(arange(100), 10).split(1)).toThrow(/fraction/);
    expect(() => new TokenDataset(arange(100), 0)).toThrow(/blockSize/);
    expect(() => new TokenDataset(arange(100), 2.5)).toThrow(/blockSize/);
    expect(() => new TokenDataset(new Float32Array(100) as never, 4)).toThrow(/tokens must be an Int32Array/);
    const ds = new TokenDataset(arange(100), 4);
    expect(() => ds.batchAt(0, 0, 0)).toThrow(/batchSize/);
    expect(() => ds.batchAt(2, 0, -1)).toThrow(/step/);
    expect(() => ds.batchAt(2, 0.5, 0)).toThrow(/seed/);
    expect(() => [...ds.batches(2, { steps: -1 })]).toThrow(/steps/);
    expect(() => ds.evalBatches(2, 1.5)).toThrow(/count/);
  });

  it('textDataset: the tokenizer of the text and its tokens split 90/10; a given tokenizer is used as it is', () => {
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(10);
    const { tokenizer, train, val } = textDataset(text, { blockSize: 8 });
    expect(tokenizer.chars).toBe(' .abcdefghijklmnopqrstuvwxyz'); // a pangram
    expect(train.length + val.length).toBe([...text].length);
    expect(train.length).toBe(Math.floor(text.length * 0.9));
    expect(tokenizer.decode(train.tokens) + tokenizer.decode(val.tokens)).toBe(text);
    const wide = CharTokenizer.fromText(`${text}XYZ`);
    expect(textDataset(text, { blockSize: 8, valFraction: 0.2, tokenizer: wide }).tokenizer).toBe(wide);
    expect(textDataset(text, { blockSize: 8, valFraction: 0.2 }).val.length).toBe(90);
    expect(() => textDataset(text, { blockSize: 8, tokenizer: CharTokenizer.fromText('abc') })).toThrow(
      VocabularyError,
    );
    expect(() => textDataset(text, { blockSize: 50 })).toThrow(/leaves 405 for training and 45 for validation/);
    expect(() => textDataset(text, { blockSize: 8, maxVocab: 10 })).toThrow(VocabularyError);
    expect(() => textDataset(text, { blockSize: 8, valFraction: 0 })).toThrow(/valFraction/);
    expect(() => textDataset(text, { blocksize: 8 } as never)).toThrow(/unknown option "blocksize"/);
  });
});
