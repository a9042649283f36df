#!/usr/bin/env bash
# Times both builds on this machine's CPU with koala-bench, one after the other, and prints one Markdown table
# (docs/benchmarks.md, "Debian's LibTorch 1.13 against PyPI's 2.11 on the CPU"):
#   - full-size KOALA-700M, random weights, 256x256, 2 steps (RUNS_FULL measured runs after one warm-up)
#   - the tiny fixture model tests/data/fixtures/tiny-koala-700m, 256x256, 8 steps (RUNS_TINY runs after a warm-up)
# Needs build/ and build-pypi/ (scripts/build.sh with KOALA_TORCH=both). JSON records go to OUT (bench-cpu-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-cpu-out}
RUNS_FULL=${RUNS_FULL:-2}
RUNS_TINY=${RUNS_TINY:-5}
mkdir -p "$OUT"
FIX=tests/data/fixtures/tiny-koala-700m
for dir in build build-pypi; do
  b=$dir/cli/koala-bench
  [ -x "$b" ] || { echo "bench-cpu-builds: $b missing (KOALA_TORCH=both scripts/build.sh)" >&2; exit 1; }
done
for dir in build build-pypi; do
  b=$dir/cli/koala-bench
  echo "== $dir: full-size koala-700m, 256², 2 steps"
  "$b" --random-config koala-700m --tokenizer "$FIX" --steps 2 --width 256 --height 256 --guidance 5 \
      --runs "$RUNS_FULL" --warmup 1 --dtype fp32 --device cpu --scheduler euler --json "$OUT/$dir-koala-700m.json"
  echo "== $dir: tiny fixture model, 256², 8 steps"
  "$b" --model "$FIX" --steps 8 --width 256 --height 256 --guidance 5 \
      --runs "$RUNS_TINY" --warmup 1 --dtype fp32 --device cpu --scheduler euler --json "$OUT/$dir-tiny.json"
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for case in ("koala-700m", "tiny"):
    for d in ("build", "build-pypi"):
        r = json.load(open(os.path.join(out, f"{d}-{case}.json")))
        rows.append((case, r))
print("| model | LibTorch | load/build | encode | UNet step (median) | decode | whole image (median) | runs |")
print("|---|---|---|---|---|---|---|---|")
for case, r in rows:
    name = "KOALA-700M full size, 256², 2 steps" if case == "koala-700m" else "tiny-koala-700m, 256², 8 steps"
    print("| %s | %s | %.2f s | %.3f s | %.3f s | %.3f s | **%.3f s** | %s |" % (
        name, r.get("libtorch", "?"), r["load_seconds"], r["encode_seconds"], r["step_median_seconds"],
        r["decode_seconds"], r["total_seconds_median"], ", ".join("%.3f" % t for t in r["total_seconds_runs"])))
PY
