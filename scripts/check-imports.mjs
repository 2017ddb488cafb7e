// Import rules, checked in CI: (1) no import cycle across files of src/, except among the op definitions in
// src/ops/ (backward rules are built from other ops); (2) bench/, demo/ and examples/ reach the engine only
// through its public entry points, src/index.ts and src/internal.ts (what only benchmarks need).
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PUBLIC = ['src/index.ts', 'src/internal.ts'];
/** A cycle is allowed only when every file in it is under this folder. */
const CYCLES_ALLOWED_IN = 'src/ops/';
/** AssemblyScript sources compiled to WebAssembly (scripts/build-wasm.mjs), not TypeScript modules of the engine. */
const NOT_TS = 'src/backend/wasm/assembly';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = `${dir}/${name}`;
    if (rel === NOT_TS) continue;
    if (statSync(join(root, rel)).isDirectory()) out.push(...walk(rel));
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Relative imports of a file (static, type-only, re-exports and dynamic), resolved to repository paths. */
function importsOf(file) {
  const text = readFileSync(join(root, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  const out = [];
  for (const s of specs) {
    if (!s.startsWith('.')) continue;
    const base = relative(root, resolve(root, dirname(file), s));
    const candidates = [
      base.replace(/\.js$/, '.ts'),
      base.replace(/\.js$/, '.tsx'),
      `${base}.ts`,
      `${base}/index.ts`,
      base,
    ];
    const hit = candidates.find((c) => existsSync(join(root, c)) && statSync(join(root, c)).isFile());
    if (hit) out.push(hit);
  }
  return out;
}

const problems = [];

// (1) Strongly connected components of src/'s import graph (Tarjan).
const files = walk('src');
const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith('src/'))]));
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const sccs = [];
function strong(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const scc = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) sccs.push(scc.sort());
  }
}
for (const f of files) if (!idx.has(f)) strong(f);
for (const scc of sccs) {
  if (scc.every((f) => f.startsWith(CYCLES_ALLOWED_IN))) continue;
  // Name one concrete cycle through the component's first file outside the allowed folder.
  const inScc = new Set(scc);
  const start = scc.find((f) => !f.startsWith(CYCLES_ALLOWED_IN));
  const prev = new Map([[start, null]]);
  const queue = [start];
  let path;
  while (queue.length && !path) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        path = [start];
        for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
        path.push(start);
        break;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  problems.push(`import cycle (${scc.length} files): ${path.join(' -> ')}`);
}

// (2) Apps reach the engine only through its public entry points.
for (const dir of ['bench', 'demo', 'examples']) {
  for (const f of walk(dir)) {
    for (const t of importsOf(f)) {
      if (t.startsWith('src/') && !PUBLIC.includes(t)) problems.push(`${f} imports ${t}; use ${PUBLIC.join(' or ')}`);
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(`check-imports: ${p}`);
  process.exit(1);
}
console.log(
  `check-imports: ${files.length} files in src/, no cycle outside ${CYCLES_ALLOWED_IN}; bench/, demo/, examples/ use only ${PUBLIC.join(', ')}`,
);
