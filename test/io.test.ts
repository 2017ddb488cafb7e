// safetensors: round trips (deterministic bytes), the format as the spec writes it, dtype conversions on load, a
// hostile-file corpus and a seeded mutation fuzz that must give only success or ParseError, and file save/load.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ParseError, ShapeError, WgnnError } from '../src/errors.js';
import {
  loadTensors,
  parseSafetensors,
  saveTensors,
  serializeSafetensors,
  type SafetensorsEntry,
} from '../src/io/safetensors.js';
import { Rng } from '../src/rng.js';
import { memory, tensor } from '../src/tensor.js';
import { cpu } from './helpers.js';

const enc = new TextEncoder();

/** A file from a header written by hand and the byte buffer: u64 LE length, header, buffer (no padding added). */
function file(header: string, buffer: ArrayLike<number> = []): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(buffer, 8 + h.length);
  return out;
}
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const headerText = (b: Uint8Array): string =>
  new TextDecoder().decode(b.subarray(8, 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true))));

/** Throws ParseError whose message matches every pattern. */
function expectParseError(b: Uint8Array, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    parseSafetensors(b);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ParseError)) {
    const what = b.length < 8 ? `${b.length}-byte file` : `header ${JSON.stringify(headerText(b).slice(0, 200))}`;
    expect.fail(`expected ParseError for ${what}, got ${String(err)}`);
  }
  for (const p of patterns) expect(err.message).toMatch(p);
}

const awkward: SafetensorsEntry[] = [
  {
    name: 'w',
    dtype: 'float32',
    shape: [2, 3],
    data: Float32Array.of(NaN, Infinity, -Infinity, -0, 1e-45, 3.4028234663852886e38),
  },
  { name: 'scalar', dtype: 'float32', shape: [], data: Float32Array.of(-1.5) },
  { name: 'empty', dtype: 'float32', shape: [0, 3], data: new Float32Array(0) },
  { name: 'empty_i', dtype: 'int32', shape: [2, 0, 4], data: new Int32Array(0) },
  { name: 'idx', dtype: 'int32', shape: [5], data: Int32Array.of(-2147483648, 2147483647, 0, -1, 7) },
  { name: 'b', dtype: 'float32', shape: [1, 1, 1], data: Float32Array.of(0.1) },
];

describe('safetensors round trip', () => {
  it('several tensors (scalar, empty dims, NaN/±Inf/-0/subnormal f32, i32) come back bit-exact', () => {
    const b = serializeSafetensors(awkward);
    const { tensors, metadata } = parseSafetensors(b);
    expect(metadata).toEqual({});
    expect([...tensors.keys()]).toEqual(['b', 'empty', 'empty_i', 'idx', 'scalar', 'w']); // file order = name order
    for (const e of awkward) {
      const t = tensors.get(e.name)!;
      expect(t.dtype, e.name).toBe(e.dtype);
      expect(t.stored, e.name).toBe(e.dtype === 'int32' ? 'I32' : 'F32');
      expect(t.shape, e.name).toEqual(e.shape);
      expect(t.data, e.name).toBeInstanceOf(e.dtype === 'int32' ? Int32Array : Float32Array);
      expect(bytesOf(t.data), e.name).toEqual(bytesOf(e.data)); // bits: -0 and NaN included
    }
  });

  it('bytes are identical across serializations whatever the input order (deterministic)', () => {
    const meta = { z: '1', a: '2', '10': '3' };
    const a = serializeSafetensors(awkward, meta);
    const b = serializeSafetensors([...awkward].reverse(), { '10': '3', a: '2', z: '1' });
    expect(b).toEqual(a);
    expect(serializeSafetensors(awkward, meta)).toEqual(a);
  });

  it('header padded with spaces to a multiple of 8, data contiguous and aligned, sorted names', () => {
    const b = serializeSafetensors(awkward);
    const n = Number(new DataView(b.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = headerText(b);
    expect(text).toMatch(/^\{.*\} *$/);
    const h = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
    let end = 0;
    for (const name of ['b', 'empty', 'empty_i', 'idx', 'scalar', 'w']) {
      expect(h[name]!.data_offsets[0], name).toBe(end);
      expect(end % 4).toBe(0);
      end = h[name]!.data_offsets[1];
    }
    expect(8 + n + end).toBe(b.length);
  });

  it('the header is exactly the spec format (written out by hand here)', () => {
    const b = serializeSafetensors(
      [
        { name: 'x', dtype: 'int32', shape: [1], data: Int32Array.of(-2) },
        { name: 'a', dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) },
      ],
      { format: 'pt' },
    );
    const header =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}';
    const padded = header + ' '.repeat(Math.ceil(header.length / 8) * 8 - header.length);
    const data = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0xfe, 0xff, 0xff, 0xff]; // 1.0f, 2.0f, -2 little-endian
    expect(b).toEqual(file(padded, data));
  });

  it('metadata round trip (unicode, quotes, newlines, integer-like keys); metadata-only file', () => {
    const meta = { format: 'pt', note: 'é ✓ "quoted"\n\ttab \u{1f600}', '10': 'ten', '2': 'two', ['__proto__']: 'p' };
    const { metadata, tensors } = parseSafetensors(serializeSafetensors([awkward[0]!], meta));
    expect(metadata).toEqual(meta);
    expect(tensors.size).toBe(1);
    const only = parseSafetensors(serializeSafetensors([], { k: 'v' }));
    expect(only.metadata).toEqual({ k: 'v' });
    expect(only.tensors.size).toBe(0);
    expect(serializeSafetensors([], {})).toEqual(serializeSafetensors([])); // empty metadata is left out
  });

  it('names: unicode, integer-like and "__proto__" survive; sorted by code units', () => {
    const names = ['é', 'b', '10', '2', '__proto__', 'a.weight'];
    const b = serializeSafetensors(
      names.map((name, i) => ({ name, dtype: 'float32', shape: [1], data: Float32Array.of(i) })),
    );
    const { tensors } = parseSafetensors(b);
    expect([...tensors.keys()]).toEqual(['10', '2', '__proto__', 'a.weight', 'b', 'é']);
    names.forEach((name, i) => expect(tensors.get(name)!.data[0]).toBe(i));
  });

  it('float32 entries given as Float64Array are rounded to f32', () => {
    const { tensors } = parseSafetensors(
      serializeSafetensors([{ name: 'd', dtype: 'float32', shape: [3], data: Float64Array.of(0.1, 1e300, -1e-50) }]),
    );
    expect([...tensors.get('d')!.data]).toEqual([Math.fround(0.1), Infinity, -0]);
  });

  it('serialize refuses bad entries: names, dtype/data mismatch, shape/size mismatch, non-string metadata', () => {
    const f = (name: string): SafetensorsEntry => ({ name, dtype: 'float32', shape: [1], data: Float32Array.of(1) });
    expect(() => serializeSafetensors([f('a'), f('a')])).toThrow(/duplicate tensor name "a"/);
    expect(() => serializeSafetensors([f('')])).toThrow(WgnnError);
    expect(() => serializeSafetensors([f('__metadata__')])).toThrow(/__metadata__/);
    expect(() => serializeSafetensors([{ name: 'i', dtype: 'int32', shape: [1], data: Float32Array.of(1) }])).toThrow(
      DTypeError,
    );
    expect(() => serializeSafetensors([{ name: 'f', dtype: 'float32', shape: [1], data: Int32Array.of(1) }])).toThrow(
      DTypeError,
    );
    expect(() =>
      serializeSafetensors([{ name: 's', dtype: 'float32', shape: [2, 2], data: new Float32Array(3) }]),
    ).toThrow(ShapeError);
    expect(() =>
      serializeSafetensors([{ name: 's', dtype: 'float32', shape: [-1], data: new Float32Array(0) }]),
    ).toThrow(ShapeError);
    expect(() => serializeSafetensors([f('a')], { k: 5 } as unknown as Record<string, string>)).toThrow(
      /metadata "k" is 5/,
    );
  });

  it('serialize refuses a header over the 100 MB cap that readers enforce', () => {
    expect(() => serializeSafetensors([], { big: 'x'.repeat(100_000_000) })).toThrow(/over the 100000000-byte cap/);
  });
});

describe('safetensors reading other dtypes (converted on load)', () => {
  const u16 = (...v: number[]) => bytesOf(Uint16Array.from(v));
  const one = (dtype: string, shape: number[], data: Uint8Array) =>
    parseSafetensors(
      file(`{"t":{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":[0,${data.length}]}}`, data),
    ).tensors.get('t')!;

  it('F16 -> float32 exactly: normals, subnormals, max, ±Inf, NaN, -0', () => {
    const t = one('F16', [10], u16(0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555));
    expect(t.dtype).toBe('float32');
    expect(t.stored).toBe('F16');
    expect([...t.data]).toEqual([
      1,
      -2,
      2 ** -24,
      1023 * 2 ** -24,
      65504,
      Infinity,
      -Infinity,
      NaN,
      -0,
      0.333251953125,
    ]);
  });

  it('BF16 -> float32 exactly (top half of the f32 bits)', () => {
    const t = one('BF16', [7], u16(0x3f80, 0xc040, 0x7f80, 0x7fc0, 0x8000, 0x0001, 0x4049));
    expect([...t.data]).toEqual([1, -3, Infinity, NaN, -0, 2 ** -133, 3.140625]);
  });

  it('F64 -> float32 rounded to nearest (overflow to Inf, underflow to ±0)', () => {
    const v = [1.5, 0.1, 1e300, -1e-50, NaN, -3.4028235677973366e38, 16777217];
    const t = one('F64', [7], bytesOf(Float64Array.from(v)));
    expect(t.dtype).toBe('float32');
    expect([...t.data]).toEqual(v.map(Math.fround));
    expect(Object.is(t.data[3], -0)).toBe(true);
  });

  it('I64 -> int32 when every value fits; a value outside int32 is a ParseError naming tensor, index and value', () => {
    const v = [0n, -1n, 2147483647n, -2147483648n, 5n];
    const t = one('I64', [5], bytesOf(BigInt64Array.from(v)));
    expect(t.dtype).toBe('int32');
    expect([...t.data]).toEqual(v.map(Number));
    for (const [bad, at] of [
      [2147483648n, 2],
      [-2147483649n, 1],
      [1n << 40n, 0],
      [-(1n << 62n), 3],
    ] as const) {
      const data = BigInt64Array.from([1n, 2n, 3n, 4n]);
      data[at] = bad;
      expectParseError(
        file(`{"t":{"dtype":"I64","shape":[4],"data_offsets":[0,32]}}`, bytesOf(data)),
        new RegExp(`"t".*${bad}.*index ${at}`),
      );
    }
  });

  it('U8 -> int32 exactly', () => {
    const t = one('U8', [2, 3], Uint8Array.of(0, 1, 127, 128, 254, 255));
    expect(t.dtype).toBe('int32');
    expect(t.shape).toEqual([2, 3]);
    expect([...t.data]).toEqual([0, 1, 127, 128, 254, 255]);
  });

  it('a hand-built file (unpadded header, unaligned data, spaces and newlines, mixed dtypes) parses to its values', () => {
    const header = `{
      "b": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
      "__metadata__": {"format": "pt", "source": "hand"},
      "a": {"dtype": "F32", "shape": [2, 1], "data_offsets": [3, 11]},
      "c": {"dtype": "I32", "shape": [], "data_offsets": [11, 15]},
      "d": {"dtype": "BF16", "shape": [0], "data_offsets": [15, 15]}
    }`;
    const data = [9, 8, 7, 0, 0, 0x20, 0x41, 0, 0, 0x80, 0xbf, 0x39, 0x30, 0, 0]; // u8 9 8 7 | 10.0f -1.0f | 12345
    const { tensors, metadata } = parseSafetensors(file(header, data));
    expect(metadata).toEqual({ format: 'pt', source: 'hand' });
    expect([...tensors.keys()]).toEqual(['b', 'a', 'c', 'd']);
    expect(tensors.get('b')).toEqual({ dtype: 'int32', stored: 'U8', shape: [3], data: Int32Array.of(9, 8, 7) });
    expect(tensors.get('a')).toEqual({ dtype: 'float32', stored: 'F32', shape: [2, 1], data: Float32Array.of(10, -1) });
    expect(tensors.get('c')).toEqual({ dtype: 'int32', stored: 'I32', shape: [], data: Int32Array.of(12345) });
    expect(tensors.get('d')).toEqual({ dtype: 'float32', stored: 'BF16', shape: [0], data: new Float32Array(0) });
  });

  it('works on a view into a larger buffer (byteOffset != 0)', () => {
    const b = serializeSafetensors(awkward);
    const big = new Uint8Array(b.length + 13);
    big.set(b, 5);
    const { tensors } = parseSafetensors(big.subarray(5, 5 + b.length));
    expect(bytesOf(tensors.get('w')!.data)).toEqual(bytesOf(awkward[0]!.data));
  });
});

describe('safetensors hostile files: ParseError, naming what is wrong', () => {
  const valid = serializeSafetensors(awkward, { format: 'pt' });
  const entry = (e: string, buf: number[] | Uint8Array = new Uint8Array(16)) => file(`{"t":${e}}`, buf);
  const f32 = (shape: string, offsets: string, buf?: number[] | Uint8Array) =>
    entry(`{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}`, buf);

  it('files shorter than 8 bytes', () => {
    for (let n = 0; n < 8; n++)
      expectParseError(new Uint8Array(n), new RegExp(`file is ${n} bytes; expected at least 8`));
  });

  it('the valid file truncated at every offset', () => {
    for (let n = 0; n < valid.length; n++) expectParseError(valid.subarray(0, n));
  });

  it('header length: huge, over the cap, past the end, zero', () => {
    const withLen = (len: bigint) => {
      const b = valid.slice();
      new DataView(b.buffer).setBigUint64(0, len, true);
      return b;
    };
    expectParseError(withLen(2n ** 64n - 1n), /header length 18446744073709551615 exceeds the 100000000-byte cap/);
    expectParseError(withLen(2n ** 53n + 1n), /header length 9007199254740993 exceeds/);
    expectParseError(withLen(100_000_001n), /exceeds the 100000000-byte cap/);
    expectParseError(
      withLen(BigInt(valid.length - 7)),
      new RegExp(`header length ${valid.length - 7} runs past the end of the file \\(${valid.length} bytes`),
    );
    expectParseError(withLen(0n), /must be a JSON object beginning with "\{".*found nothing/);
  });

  it('non-object JSON, invalid JSON, invalid UTF-8', () => {
    for (const h of ['[1,2]', '42', '"str"', 'null', ' {}', '\ufeff{}'])
      expectParseError(file(h), /must be a JSON object beginning with "\{"/);
    for (const h of ['{', '{"a":}', '{"a":1,}', '{} x', "{'a':1}", '{"a":1}}'])
      expectParseError(file(h), /not valid JSON/);
    const utf8 = (...bad: number[]) => new Uint8Array([...file('{"')].concat(bad, [...enc.encode('":"x"}')]));
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const b = utf8(...bad);
      new DataView(b.buffer).setBigUint64(0, BigInt(b.length - 8), true);
      expectParseError(b, /not valid UTF-8/);
    }
  });

  it('entries: not objects, bad or unknown dtypes, bad shapes', () => {
    for (const e of ['1', '[]', 'null', '"F32"']) expectParseError(entry(e), /tensor "t" is .*expected an object/);
    for (const d of ['"F8_E4M3"', '"BOOL"', '"f32"', '"toString"', '"__proto__"', '4', 'null']) {
      expectParseError(
        entry(`{"dtype":${d},"shape":[4],"data_offsets":[0,16]}`),
        /tensor "t": dtype .* is not one wgnn reads/,
      );
    }
    expectParseError(entry('{"shape":[4],"data_offsets":[0,16]}'), /dtype undefined/);
    for (const s of ['4', '"[4]"', 'null', '{"0":4}'])
      expectParseError(f32(s, '[0,16]'), /tensor "t": shape .* is not an array/);
    for (const s of ['[-4]', '[1.5]', '["4"]', '[null]', '[9007199254740992]', '[1e400]']) {
      expectParseError(f32(s, '[0,16]'), /tensor "t": shape .* must hold non-negative integers/);
    }
  });

  it('shape product overflow (even before a 0 dim), and a product that needs more bytes than exist', () => {
    expectParseError(f32('[134217728,134217728]', '[0,16]'), /tensor "t": shape \[134217728,134217728\] .*2\^53-1/);
    expectParseError(f32('[4294967296,4294967296,0]', '[0,0]', []), /running product/);
    expectParseError(
      f32('[2251799813685248]', '[0,16]'),
      /span 16 bytes; shape \[2251799813685248\] of F32 needs 9007199254740992/,
    );
  });

  it('data_offsets: malformed, reversed, out of range, size mismatch', () => {
    for (const o of ['16', '[0]', '[0,16,16]', '[-1,15]', '[0.5,16]', '["0",16]', 'null', '[0,1e400]']) {
      expectParseError(f32('[4]', o), /tensor "t": data_offsets .* must be two non-negative integers/);
    }
    expectParseError(f32('[0]', '[8,4]'), /data_offsets \[8, 4\] are outside the 16-byte buffer or reversed/);
    expectParseError(f32('[5]', '[0,20]'), /data_offsets \[0, 20\] are outside the 16-byte buffer/);
    expectParseError(f32('[3]', '[0,16]'), /data_offsets \[0, 16\] span 16 bytes; shape \[3\] of F32 needs 12/);
    expectParseError(f32('[5]', '[0,16]'), /span 16 bytes; shape \[5\] of F32 needs 20/);
    expectParseError(entry('{"dtype":"F16","shape":[4],"data_offsets":[0,16]}'), /shape \[4\] of F16 needs 8/);
  });

  it('overlaps, gaps and trailing bytes: the buffer must be indexed exactly', () => {
    const two = (a: string, b: string, n: number) =>
      file(
        `{"a":{"dtype":"F32","shape":[4],"data_offsets":${a}},"b":{"dtype":"F32","shape":[4],"data_offsets":${b}}}`,
        new Uint8Array(n),
      );
    expectParseError(
      two('[0,16]', '[0,16]', 16),
      /tensor "[ab]" data_offsets \[0, 16\] overlap tensor "[ab]", which ends at 16/,
    );
    expectParseError(
      two('[0,16]', '[8,24]', 24),
      /tensor "b" data_offsets \[8, 24\] overlap tensor "a", which ends at 16/,
    );
    expectParseError(
      two('[0,16]', '[20,36]', 36),
      /bytes \[16, 20\) of the byte buffer are not indexed by any tensor \(gap before tensor "b"\)/,
    );
    expectParseError(two('[4,20]', '[20,36]', 36), /bytes \[0, 4\) .*gap before tensor "a"/);
    expectParseError(two('[0,16]', '[16,32]', 33), /bytes \[32, 33\) at the end of the byte buffer are not indexed/);
    expectParseError(file('{}', [0]), /bytes \[0, 1\) at the end/);
    // a zero-size tensor inside another tensor's range
    const inside = file(
      '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}',
      new Uint8Array(16),
    );
    expectParseError(inside, /tensor "z" data_offsets \[8, 8\] overlap tensor "a"/);
    // zero-size tensors at the boundaries are fine
    const edges = file(
      '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"z":{"dtype":"I32","shape":[0,9],"data_offsets":[16,16]}}',
      new Uint8Array(16),
    );
    expect([...parseSafetensors(edges).tensors.keys()]).toEqual(['y', 'a', 'z']);
  });

  it('names: empty, duplicate (also escaped), duplicate keys inside entries and metadata', () => {
    expectParseError(file('{"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'), /empty name/);
    const z = '{"dtype":"F32","shape":[0],"data_offsets":[0,0]}';
    expectParseError(file(`{"a":${z},"a":${z}}`), /duplicate tensor name "a"/);
    expectParseError(file(`{"a":${z},"\\u0061":${z}}`), /duplicate tensor name "a"/);
    expectParseError(
      file(`{"a":{"dtype":"F32","dtype":"I32","shape":[0],"data_offsets":[0,0]}}`),
      /duplicate key "dtype"/,
    );
    expectParseError(file(`{"__metadata__":{"k":"1","k":"2"}}`), /duplicate key "k"/);
    expectParseError(file(`{"__metadata__":{},"__metadata__":{}}`), /duplicate tensor name "__metadata__"/);
    // keys equal to values elsewhere, nested arrays/objects and escaped quotes are not duplicates
    const ok = file(
      `{"__metadata__":{"a":"a","q\\"":"\\"{,[","b":"a"},"a":${z},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":[{"a":1},{"a":[{"a":2}]}]}}`,
    );
    expect(parseSafetensors(ok).metadata).toEqual({ a: 'a', 'q"': '"{,[', b: 'a' });
  });

  it('metadata: not an object, values not strings', () => {
    for (const m of ['"x"', '[]', 'null', '1'])
      expectParseError(file(`{"__metadata__":${m}}`), /__metadata__ is .*expected an object of strings/);
    for (const v of ['1', 'null', '{}', '["a"]', 'true'])
      expectParseError(file(`{"__metadata__":{"k":${v}}}`), /__metadata__ "k" is .*expected a string/);
  });

  it('many tensors: 10^5 empty ones parse in under 2 s; 10^6 pass maxTensors (default 100,000) and are refused before the JSON is parsed', () => {
    const empties = (n: number) => {
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
      return file(`{"__metadata__":{"k":"v"},${parts.join(',')}}`);
    };
    // NOTE: CPU time, not wall time: the test machine may be shared, and it is the parser's cost that is bounded here.
    const timed = <T>(f: () => T): [T, number] => {
      const c = process.cpuUsage();
      const out = f();
      const { user, system } = process.cpuUsage(c);
      return [out, (user + system) / 1000];
    };
    const many = empties(100_000);
    const [parsed, ms] = timed(() => parseSafetensors(many));
    expect(parsed.tensors.size).toBe(100_000);
    expect(parsed.tensors.get('t99999')!.data).toEqual(new Float32Array(0));
    const million = empties(1_000_000); // a 59 MB header, under the 100 MB cap
    let err: unknown;
    const [, refusedMs] = timed(() => {
      try {
        parseSafetensors(million);
      } catch (e) {
        err = e;
      }
    });
    console.log(
      `safetensors: 10^5 empty tensors parsed in ${ms.toFixed(0)} ms, 10^6 refused in ${refusedMs.toFixed(0)} ms (CPU time)`,
    );
    expect(ms).toBeLessThan(2000);
    expect(refusedMs).toBeLessThan(1000);
    expect(err).toBeInstanceOf(ParseError);
    expect((err as Error).message).toMatch(
      /^safetensors: the header indexes more than 100000 tensors \(at character \d+\); the maxTensors option raises the limit$/,
    );
    // the limits are the caller's: lower, or raised
    const three = serializeSafetensors(awkward.slice(0, 3), { k: 'v' });
    expect(() => parseSafetensors(three, { maxTensors: 2 })).toThrow(/more than 2 tensors/);
    expect(parseSafetensors(three, { maxTensors: 3 }).tensors.size).toBe(3); // __metadata__ is not a tensor
    expect(() => parseSafetensors(three, { maxHeaderBytes: 64 })).toThrow(
      /exceeds the 64-byte cap .*; the maxHeaderBytes option raises it/,
    );
    expect(() => parseSafetensors(three, { maxTensors: -1 })).toThrow(WgnnError);
    expect(() => parseSafetensors(three, { maxTensors: -1 })).toThrow(/maxTensors -1 must be an integer >= 0/);
  });

  it('a huge name is cut short in the message', () => {
    const name = 'n'.repeat(1_000_000);
    let msg = '';
    try {
      parseSafetensors(file(`{"${name}":{"dtype":"X","shape":[],"data_offsets":[0,0]}}`));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/dtype "X" is not one wgnn reads/);
    expect(msg.length).toBeLessThan(300);
  });
});

describe('safetensors mutation fuzz', () => {
  it('2,000 seeded mutations of a valid file give only success or ParseError, each quickly', () => {
    const seed = 20240611;
    const rng = new Rng(seed);
    const base = file(
      '{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"u":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},' +
        '"w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},"i":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},"e":{"dtype":"BF16","shape":[0,4],"data_offsets":[40,40]},' +
        '"d":{"dtype":"F64","shape":[],"data_offsets":[40,48]}}',
      [
        ...new Uint8Array(24).map((_, i) => i * 7),
        ...bytesOf(BigInt64Array.of(-3n, 99n)),
        ...bytesOf(Float64Array.of(2.5)),
      ],
    );
    expect(parseSafetensors(base).tensors.size).toBe(6);
    const counts = { ok: 0, parseError: 0 };
    let slowest = { ms: 0, iter: -1, kind: -1 };
    for (let iter = 0; iter < 2000; iter++) {
      const b = base.slice();
      let m: Uint8Array = b;
      const kind = rng.int(0, 7);
      const dv = new DataView(b.buffer);
      if (kind === 0) {
        // bit flips anywhere
        for (let k = rng.int(1, 5); k > 0; k--) b[rng.int(0, b.length)]! ^= 1 << rng.int(0, 8);
      } else if (kind === 1) {
        // bit flips in the byte buffer: values change, the file stays valid unless an I64 leaves int32
        for (let k = rng.int(1, 5); k > 0; k--) b[rng.int(base.length - 48, b.length)]! ^= 1 << rng.int(0, 8);
      } else if (kind === 2) {
        m = b.subarray(0, rng.int(0, b.length));
      } else if (kind === 3) {
        dv.setBigUint64(0, BigInt(Math.max(0, Number(dv.getBigUint64(0, true)) + rng.int(-16, 17))), true);
      } else if (kind === 4) {
        dv.setUint32(rng.int(0, 2) * 4, rng.int(0, 2 ** 32), true);
      } else if (kind === 5) {
        // a JSON-significant or non-ASCII byte somewhere in the header or buffer
        b[rng.int(8, b.length)] = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x39, 0x2d, 0x80, 0xff][
          rng.int(0, 13)
        ]!;
      } else {
        m = new Uint8Array([...b, ...Array.from({ length: rng.int(1, 9) }, () => rng.int(0, 256))]);
      }
      const t0 = performance.now();
      try {
        const { tensors } = parseSafetensors(m);
        for (const [name, t] of tensors)
          expect(t.data.length, `iter ${iter} seed ${seed}: ${name}`).toBe(t.shape.reduce((a, d) => a * d, 1));
        counts.ok++;
      } catch (e) {
        if (!(e instanceof ParseError)) throw new Error(`iter ${iter} seed ${seed} (mutation ${kind}): ${String(e)}`);
        counts.parseError++;
      }
      const ms = performance.now() - t0;
      if (ms > slowest.ms) slowest = { ms, iter, kind };
    }
    console.log(
      `mutation fuzz (seed ${seed}): ${counts.ok} parsed, ${counts.parseError} ParseError; slowest ${slowest.ms.toFixed(2)} ms (iter ${slowest.iter}, mutation ${slowest.kind})`,
    );
    expect(counts.ok).toBeGreaterThan(150);
    expect(counts.parseError).toBeGreaterThan(1000);
    expect(slowest.ms, 'no mutation may make parsing slow (generous for a loaded machine)').toBeLessThan(250);
  });
});

describe('saveTensors / loadTensors [cpu]', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wgnn-io-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round trip through a file: same bytes on disk, same tensors back, nothing left beside it', async () => {
    const live = memory(cpu).liveTensors;
    const named = {
      'conv.w': tensor(Float32Array.of(1, -0, NaN, Infinity, 0.25, -7), [1, 2, 3, 1], { backend: cpu }),
      labels: tensor(Int32Array.of(3, -1, 2147483647), [3], { backend: cpu }),
      step: tensor([42], [], { backend: cpu }),
      none: tensor([], [0, 5], { backend: cpu }),
      ['__proto__']: tensor([1], [1], { backend: cpu }), // an own key, as a hostile file could name it
    };
    const path = join(dir, 'model.safetensors');
    const bytes = await saveTensors(path, named, { epoch: '3' });
    expect(new Uint8Array(await readFile(path))).toEqual(bytes);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
    expect(await saveTensors(undefined, named, { epoch: '3' })).toEqual(bytes);
    expect(parseSafetensors(bytes).metadata).toEqual({ epoch: '3' });

    for (const loaded of [await loadTensors(path, { backend: cpu }), await loadTensors(bytes, { backend: cpu })]) {
      expect(Object.keys(loaded).sort()).toEqual(Object.keys(named).sort());
      for (const [name, t] of Object.entries(named)) {
        const u = loaded[name]!;
        expect(u.dtype, name).toBe(t.dtype);
        expect(u.shape, name).toEqual(t.shape);
        expect(u.backend, name).toBe(cpu);
        expect(bytesOf(await u.data()), name).toEqual(bytesOf(await t.data()));
        u.dispose();
      }
    }
    for (const t of Object.values(named)) t.dispose();
    expect(memory(cpu).liveTensors).toBe(live);
  });

  it('overwrites an existing file atomically; a failed write leaves no temp file behind', async () => {
    const path = join(dir, 'over.safetensors');
    await writeFile(path, 'old contents');
    const t = tensor([1, 2], [2], { backend: cpu });
    const bytes = await saveTensors(path, { t });
    expect(new Uint8Array(await readFile(path))).toEqual(bytes);
    await expect(saveTensors(join(dir, 'no-such-dir', 'x.safetensors'), { t })).rejects.toThrow(/ENOENT/);
    // renaming onto a non-empty directory fails after the temp file was written and flushed
    const target = join(dir, 'is-a-dir');
    await mkdir(join(target, 'child'), { recursive: true });
    await expect(saveTensors(target, { t })).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['is-a-dir', 'model.safetensors', 'over.safetensors']);
    t.dispose();
  });

  it('loadTensors of a hostile file throws ParseError and creates no tensors', async () => {
    const live = memory(cpu).liveTensors;
    const bad = file(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}}',
      [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    );
    await expect(loadTensors(bad, { backend: cpu })).rejects.toThrow(/tensor "b" \(I64\) holds 4294967296 at index 0/);
    await expect(loadTensors(bad, { backend: cpu })).rejects.toBeInstanceOf(ParseError);
    expect(memory(cpu).liveTensors).toBe(live);
  });
});
