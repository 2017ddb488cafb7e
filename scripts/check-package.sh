#!/usr/bin/env bash
# The package as a user gets it (CI step): `npm pack`, install the tarball in a fresh project, type-check the README's
# two API snippets with strict tsc (no skipLibCheck), then run them and one training step of the seed CNN on
# Fashion-MNIST loaded through wg.data, on WebGPU. Fails on any error; removes its temporary folder.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wgnn-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cd "$root"
npm run build --silent
tgz=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
echo "check-package: packed $tgz ($(du -h "$tmp/$tgz" | cut -f1))"

app="$tmp/app"
mkdir "$app"
cd "$app"
cat > package.json <<'EOF'
{ "name": "wgnn-package-check", "private": true, "type": "module" }
EOF
# NOTE: no "types" and no skipLibCheck: the package's declarations must bring every type they use (the WebGPU ones).
cat > tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "skipLibCheck": false,
    "outDir": "out"
  },
  "files": ["check.ts"]
}
EOF
npm install --prefer-offline --no-audit --no-fund --loglevel=error "$tmp/$tgz"

# check.ts: the README's two snippets as written (from "## The API at a glance"), with the data they assume made
# from Fashion-MNIST around them, the GPT snippet ("## A GPT", 3 steps), then the seed CNN's training step.
README="$root/README.md" node --input-type=module <<'EOF'
import { readFileSync, writeFileSync } from 'node:fs';
const readme = readFileSync(process.env.README, 'utf8');
const section = readme.split(/^## /m).find((s) => s.startsWith('The API at a glance'));
const snippets = [...(section ?? '').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
if (snippets.length !== 2) throw new Error(`README.md "The API at a glance": ${snippets.length} ts snippets, expected 2 (Keras and PyTorch style)`);
const gptSection = readme.split(/^## /m).find((s) => s.startsWith('A GPT'));
const gpt = [...(gptSection ?? '').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
if (gpt.length !== 1) throw new Error(`README.md "A GPT": ${gpt.length} ts snippets, expected 1`);
// Its training loop and generation as written, shortened to 3 steps and 20 tokens.
const gptShort = gpt[0].replace('steps: 1000', 'steps: 3').replace('maxTokens: 200', 'maxTokens: 20');
if (gptShort === gpt[0]) throw new Error('README.md "A GPT": no "steps: 1000" / "maxTokens: 200" to shorten');
const imports = snippets.flatMap((s) => s.split('\n').filter((l) => l.startsWith('import ')));
const body = (s) => s.split('\n').filter((l) => !l.startsWith('import ')).join('\n');
writeFileSync('check.ts', `${imports.join('\n')}

const fashion = wg.data.loadFashionMnist();
const host = (d: wg.Dataset) => [{ data: d.x, shape: [...d.xShape] }, { data: d.y, shape: [...d.yShape] }] as const;
const [x, y] = host(fashion.train.slice(0, 256));
const [xTest, yTest] = host(fashion.test.slice(0, 128));

// ---- README: Keras style
${body(snippets[0])}
// init() picks WebGPU on a GPU, the WASM backend on a software adapter (this machine's lavapipe)
if (!['webgpu', 'wasm'].includes(wg.backend().name)) throw new Error(\`expected WebGPU or WASM, got \${wg.backend().name}\`);

const first = fashion.train.slice(0, 64);
const xb = wg.tensor(first.x, [64, 784]);
const yb = wg.tensor(first.y, [64]);

// ---- README: PyTorch style
${body(snippets[1])}
const torchLoss = (await loss.data())[0]!;
if (!Number.isFinite(torchLoss)) throw new Error(\`PyTorch-style step: loss \${torchLoss}\`);

// ---- README: a GPT (its own block: it names model and optimizer again)
{
${gptShort}
}

// ---- one training step of the seed CNN on Fashion-MNIST on each fast backend (the package's Dawn and its wasm module)
for (const backend of ['webgpu', 'wasm'] as const) {
  await wg.init({ backend });
  const cnn = wg.nn.seedModel('cnn', [28, 28, 1], fashion.classes);
  cnn.compile({ optimizer: wg.optim.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  const [bx, by] = host(fashion.train.slice(0, 32));
  const { history } = await cnn.fit(bx, by, { epochs: 1, batchSize: 32, verbose: 0 });
  const cnnLoss = history.loss?.[0];
  if (history.loss?.length !== 1 || !Number.isFinite(cnnLoss)) throw new Error(\`seed CNN step: losses \${JSON.stringify(history.loss)}\`);
  console.log(\`check-package: seed CNN, one step on Fashion-MNIST (batch 32, \${wg.backend().name}): loss \${cnnLoss!.toFixed(4)}\`);
}
wg.shutdown();
`);
EOF

"$root/node_modules/.bin/tsc" -p tsconfig.json
node out/check.js
echo "check-package: ok (strict tsc without skipLibCheck, README snippets and a seed CNN step on the installed $tgz)"
