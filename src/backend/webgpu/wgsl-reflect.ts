// WGSL reflection: a shader's workgroup size and workgroup memory, evaluated from its source and override values
// (module-scope `override`/`const` integer arithmetic, `@workgroup_size`, `var<workgroup>` layouts). The backend
// checks pipelines against the device's limits with it; matmul picks its tiles by it.

/**
 * The workgroup size and workgroup memory of a shader with these override values, evaluated from its WGSL: the
 * module-scope `override` and `const` declarations (integer arithmetic), `@workgroup_size(...)` and each
 * `var<workgroup>`, counted as WebGPU counts them (each rounded up to 16 bytes). Lets dispatch refuse a pipeline
 * before creating it. NOTE: every declared workgroup variable counts (WebGPU counts those the entry point uses):
 * this can only over-estimate.
 */
export function workgroupNeeds(
  source: string,
  overrides: Record<string, number | boolean> = {},
): { size: [number, number, number]; storage: number } {
  const decls = new Map<string, string>();
  for (const m of source.matchAll(/^(?:override|const)\s+(\w+)\s*(?::\s*\w+\s*)?=\s*([^;]+);/gm))
    decls.set(m[1]!, m[2]!);
  const known = new Map<string, number>();
  const value = (name: string): number => {
    if (name in overrides) return Number(overrides[name]);
    let v = known.get(name);
    if (v === undefined) {
      const expr = decls.get(name);
      if (expr === undefined) throw new Error(`workgroupNeeds: no value for '${name}'`);
      known.set(name, (v = evalInt(expr, value)));
    }
    return v;
  };
  const sizeArgs = /@workgroup_size\(([^)]*)\)/.exec(source);
  if (!sizeArgs) throw new Error('workgroupNeeds: no @workgroup_size');
  const dims = splitTop(sizeArgs[1]!).map((e) => evalInt(e, value));
  let storage = 0;
  for (const m of source.matchAll(/^var<workgroup>\s+\w+\s*:\s*([^;]+);/gm))
    storage += Math.ceil(layoutOf(m[1]!, value).size / 16) * 16;
  return { size: [dims[0] ?? 1, dims[1] ?? 1, dims[2] ?? 1], storage };
}

/** Scalar sizes by type name and by vector suffix (vec4f, vec2h). */
const SCALAR_BYTES: Record<string, number> = { f32: 4, i32: 4, u32: 4, bool: 4, f16: 2, f: 4, i: 4, u: 4, h: 2 };

/** Size and alignment of a WGSL type of scalars, vectors, atomics and fixed-size arrays. */
function layoutOf(type: string, value: (name: string) => number): { size: number; align: number } {
  const t = type.trim();
  const generic = /^(array|atomic)<(.*)>$/s.exec(t);
  if (generic?.[1] === 'atomic') return layoutOf(generic[2]!, value);
  if (generic) {
    const [elem, count] = splitTop(generic[2]!);
    if (count === undefined) throw new Error(`workgroupNeeds: runtime-sized ${t} in workgroup memory`);
    const e = layoutOf(elem!, value);
    return { size: Math.ceil(e.size / e.align) * e.align * evalInt(count, value), align: e.align };
  }
  const vec = /^vec([234])(?:<(\w+)>|([fiuh]))$/.exec(t);
  const bytes = SCALAR_BYTES[vec ? (vec[2] ?? vec[3])! : t];
  if (bytes === undefined) throw new Error(`workgroupNeeds: cannot size type ${t}`);
  if (!vec) return { size: bytes, align: bytes };
  const n = Number(vec[1]);
  return { size: n * bytes, align: (n === 2 ? 2 : 4) * bytes };
}

/** Splits at the commas outside any () or <>. */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '<') depth++;
    else if (c === ')' || c === '>') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  const last = s.slice(start);
  if (last.trim()) parts.push(last);
  return parts;
}

/** An integer WGSL expression of literals (`16u`, `0x10`), names, + - * / % and parentheses; / truncates. */
function evalInt(expr: string, value: (name: string) => number): number {
  const toks = expr.match(/0x[0-9a-f]+[iu]?|\d+[iu]?|[a-z_]\w*|\S/gi) ?? [];
  let i = 0;
  const fail = (): never => {
    throw new Error(`workgroupNeeds: cannot evaluate '${expr.trim()}'`);
  };
  const primary = (): number => {
    const t = toks[i++] ?? fail();
    if (t === '(') {
      const v = sum();
      if (toks[i++] !== ')') fail();
      return v;
    }
    if (t === '-') return -primary();
    if (/^\d/.test(t)) return Number.parseInt(t, t.startsWith('0x') || t.startsWith('0X') ? 16 : 10);
    if (/^[a-z_]/i.test(t)) return value(t);
    return fail();
  };
  const product = (): number => {
    let v = primary();
    for (let op = toks[i]; op === '*' || op === '/' || op === '%'; op = toks[i]) {
      i++;
      const r = primary();
      v = op === '*' ? v * r : op === '/' ? Math.trunc(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    for (let op = toks[i]; op === '+' || op === '-'; op = toks[i]) {
      i++;
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
    return v;
  };
  const v = sum();
  if (i !== toks.length) fail();
  return v;
}
