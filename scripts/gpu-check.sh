#!/bin/bash
# GPU check: preflight, build the engine, koala-bench and the engine tests against the CUDA LibTorch of the GPU
# machine, benchmark the full-size architectures (random weights) FIRST, each given only the time that is left and
# the summary rewritten after each one (a run cut at the device's limit keeps its numbers), then run the fixture and
# GPU tests inside what remains. Targets: docs/performance.md. Meant for the device tool (no Qt, no network):
#
#   scripts/gpu-check.sh                 # on the GPU machine; results in $OUT (default ./gpu-check-out)
#   scripts/gpu-check.sh --dry-run       # print what would run
#   scripts/gpu-check.sh --cpu-smoke     # here: CPU LibTorch (/usr), build-bench, a tiny random config, 1 step
#   scripts/gpu-check.sh --with-diffusers   # + diffusers side by side on the same random-weight files, after the
#                                           # engine benchmarks (tools/gpu/diffusers_side_by_side.py; carry .whl
#                                           # from scripts/fetch-device-wheels.sh: installed into /tmp/site)
#
# Environment (all optional): OUT, BUILD_DIR (build-gpu), JOBS (nproc), TORCH_PREFIX (from python3's torch),
# DEPS (.device-deps, unpacked by ../shared/tools/device-deps.sh), KOALA_CHECK_SIZE (1024), KOALA_CHECK_STEPS (25),
# KOALA_CHECK_RUNS (5), KOALA_CHECK_CONFIGS ("arch:dtype:memory[:fused] ..."), KOALA_CHECK_BUDGET (seconds for the whole
# script, 540; each benchmark gets what is left minus KOALA_CHECK_TEST_RESERVE, 90, or 0 with
# KOALA_CHECK_SKIP_TESTS=1), KOALA_CHECK_SKIP_TESTS=1, KOALA_CHECK_NO_BUILD=1 (use the binaries already in BUILD_DIR:
# a warm rerun). With --with-diffusers: KOALA_CHECK_DIFFUSERS_ARCHS (koala-700m,koala-1b,sdxl-base; --cpu-smoke:
# tiny), KOALA_CHECK_DIFFUSERS_RUNS (3), KOALA_CHECK_PYTHON (python3; --cpu-smoke: the reference venv's),
# KOALA_CHECK_SITE (/tmp/site); KOALA_CHECK_CONFIGS then defaults to "koala-700m:fp16:low" alone (the side by side
# times the default mode of every architecture itself).
# Output files in $OUT (the device tool returns at most 8): gpu-check.log, ctest.log, bench.json, summary.md,
# summary.stdout, and with --with-diffusers diffusers-side-by-side.json and diffusers-side-by-side.md.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$(date +%s)
DRY=0
SMOKE=0
DIFF=0
for a in "$@"; do
    case "$a" in
        --dry-run) DRY=1 ;;
        --cpu-smoke) SMOKE=1 ;;
        --with-diffusers) DIFF=1 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $a" >&2; exit 1 ;;
    esac
done

OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
run() {   # run a command, logging it; in --dry-run only print it
    say "+ $*"
    [ "$DRY" = 1 ] && return 0
    "$@" 2>&1 | tee -a "$LOG"
    return "${PIPESTATUS[0]}"
}
elapsed() { echo $(( $(date +%s) - T0 )); }

if [ "$SMOKE" = 1 ]; then
    DEVICE=cpu
    BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
    JOBS=${JOBS:-2}
    TORCH_PREFIX=${TORCH_PREFIX:-/usr}
    SIZE=${KOALA_CHECK_SIZE:-64}
    STEPS=${KOALA_CHECK_STEPS:-2}
    RUNS=${KOALA_CHECK_RUNS:-1}
    FIX=$ROOT/tests/data/fixtures/tiny-koala-700m
    CONFIGS=${KOALA_CHECK_CONFIGS:-"$FIX:fp32:default $FIX:bf16:default $FIX:fp32:low"}
    TEST_LABELS="gpu"
    DIFF_ARCHS=${KOALA_CHECK_DIFFUSERS_ARCHS:-tiny}
    VENV_PY=${KOALA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/koala-studio/torch-2.11}/bin/python
    [ -x "$VENV_PY" ] || VENV_PY=python3
    PY=${KOALA_CHECK_PYTHON:-$VENV_PY}
else
    DEVICE=cuda
    BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu}
    JOBS=${JOBS:-$(nproc)}
    SIZE=${KOALA_CHECK_SIZE:-1024}
    STEPS=${KOALA_CHECK_STEPS:-25}
    RUNS=${KOALA_CHECK_RUNS:-5}
    CONFIGS=${KOALA_CHECK_CONFIGS:-"koala-700m:fp16:default koala-700m:fp16:default:fused koala-700m:fp16:low koala-700m:bf16:default koala-1b:fp16:default sdxl-base:fp16:default"}
    [ "$DIFF" = 1 ] && CONFIGS=${KOALA_CHECK_CONFIGS:-"koala-700m:fp16:low koala-700m:fp16:default:fused"}
    TEST_LABELS="fixtures|gpu"
    DIFF_ARCHS=${KOALA_CHECK_DIFFUSERS_ARCHS:-koala-700m,koala-1b,sdxl-base}
    PY=${KOALA_CHECK_PYTHON:-python3}
fi
BUDGET=${KOALA_CHECK_BUDGET:-540}
DIFF_RUNS=${KOALA_CHECK_DIFFUSERS_RUNS:-3}

if [ -z "${TORCH_PREFIX:-}" ]; then
    # The torch package folder itself (not only its share/cmake): TorchConfig.cmake then finds its own libtorch.so.
    TORCH_PREFIX=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) || TORCH_PREFIX=""
    [ -n "$TORCH_PREFIX" ] || { say "gpu-check: no LibTorch: python3 cannot import torch and TORCH_PREFIX is unset"; [ "$DRY" = 1 ] || exit 2; }
fi
DEPS=${DEPS:-$ROOT/.device-deps}
PREFIX="$TORCH_PREFIX"
if [ -d "$DEPS/usr" ]; then
    PREFIX="$PREFIX;$DEPS/usr"
    export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
elif [ "$SMOKE" = 0 ]; then
    say "gpu-check: WARNING: no $DEPS/usr (nlohmann-json, utf8proc): run ../shared/tools/device-deps.sh .device-deps"
    say "           on the development machine and name .device-deps in the device tool's carry"
fi
# ---- preflight (before any build minute is spent) ------------------------------------------------------------------
preflight_fail=0
if [ "$SMOKE" = 0 ] && [ "$DRY" = 0 ]; then
    tv=$(python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1) ||
        { say "gpu-check: PREFLIGHT: python3 cannot import torch: $tv"; preflight_fail=1; }
    read -r TORCH_V TORCH_CUDA TORCH_GPU <<<"$tv"
    say "gpu-check: preflight: torch $TORCH_V, CUDA $TORCH_CUDA, GPU visible to torch: $TORCH_GPU"
    [ "$TORCH_GPU" = True ] || { say "gpu-check: PREFLIGHT: torch sees no GPU"; preflight_fail=1; }
    NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
    if [ -z "$NVCC" ]; then
        say "gpu-check: PREFLIGHT: no nvcc (Caffe2's cuda.cmake needs the toolkit torch was built for)"; preflight_fail=1
    else
        NV=$("$NVCC" --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
        say "gpu-check: preflight: nvcc $NVCC ($NV)"
        [ "$NV" = "$TORCH_CUDA" ] || { say "gpu-check: PREFLIGHT: nvcc $NV != torch's CUDA $TORCH_CUDA"; preflight_fail=1; }
        export PATH="$(dirname "$NVCC"):$PATH" CUDACXX="$NVCC"
    fi
    for h in nlohmann/json.hpp utf8proc.h zlib.h; do
        if ! ls "$DEPS/usr/include/$h" /usr/include/"$h" >/dev/null 2>&1; then
            say "gpu-check: PREFLIGHT: header $h missing (carry .device-deps)"; preflight_fail=1
        fi
    done
    [ -f "$TORCH_PREFIX/share/cmake/Torch/TorchConfig.cmake" ] ||
        { say "gpu-check: PREFLIGHT: no TorchConfig.cmake under $TORCH_PREFIX"; preflight_fail=1; }
    if [ "$DIFF" = 1 ]; then
        # diffusers travels as .whl/ (scripts/fetch-device-wheels.sh): wheels are pip-installed as the device README
        # says, NAME-VERSION.tar.xz (a pure-Python wheel's files) unpacked; both into $SITE, put first on PYTHONPATH.
        SITE=${KOALA_CHECK_SITE:-/tmp/site}
        if compgen -G ".whl/*.whl" >/dev/null; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
                .whl/*.whl 2>&1 | tee -a "$LOG"
        fi
        if compgen -G ".whl/*.tar.xz" >/dev/null; then
            "$PY" -c 'import sys, tarfile
for t in sys.argv[2:]:
    with tarfile.open(t) as f:
        try:
            f.extractall(sys.argv[1], filter="data")
        except TypeError:  # a Python without extraction filters
            f.extractall(sys.argv[1])' "$SITE" .whl/*.tar.xz 2>&1 | tee -a "$LOG"
        fi
        [ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
        dv=$("$PY" -c 'import diffusers, transformers; print(diffusers.__version__, transformers.__version__)' 2>&1 |
            tail -n 1)
        if [[ $dv =~ ^[0-9] ]]; then
            say "gpu-check: preflight: diffusers, transformers: $dv"
        else
            say "gpu-check: PREFLIGHT: --with-diffusers but $PY cannot import diffusers ($dv): run"
            say "           scripts/fetch-device-wheels.sh here and name .whl in the device tool's carry"
            preflight_fail=1
        fi
    fi
    [ "$preflight_fail" = 0 ] || { say "gpu-check: preflight failed after $(elapsed) s"; exit 2; }
    # Hopper (H100/H200): no probe compile-and-run of the GPU architecture at configure time.
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
fi

if command -v ninja >/dev/null 2>&1; then GEN=Ninja; else GEN="Unix Makefiles"; fi

say "gpu-check: device $DEVICE, build $BUILD_DIR ($GEN, -j$JOBS), LibTorch prefix $TORCH_PREFIX"
[ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null 2>&1 && [ "$DRY" = 0 ] &&
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"

# ---- build ---------------------------------------------------------------------------------------------------------
NO_BUILD=${KOALA_CHECK_NO_BUILD:-0}
if [ "$NO_BUILD" = 1 ]; then
    say "gpu-check: KOALA_CHECK_NO_BUILD=1: using the binaries already in $BUILD_DIR"
else
    run cmake -S "$ROOT" -B "$BUILD_DIR" -G "$GEN" -DKOALA_BUILD_GUI=OFF -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_PREFIX_PATH=$PREFIX" || { say "gpu-check: cmake failed"; exit 2; }
    if [ "$DEVICE" = cuda ] && [ "$DRY" = 0 ] && ! grep -q "CUDA LibTorch" "$LOG"; then
        say "gpu-check: WARNING: CMake did not report a CUDA LibTorch (KOALA_WITH_CUDA off): CUDA paths are not built"
    fi
fi
# Only what the check needs: the benchmark, then the engine tests that `ctest -L` selects (fixture_* and gpu_*).
TARGETS=(koala-cli)
for f in tests/engine/fixture_*.cpp tests/engine/gpu_*.cpp; do
    n=$(basename "$f" .cpp)
    case "$TEST_LABELS" in *fixtures*) TARGETS+=("test_$n") ;; *) [[ $n == gpu_* ]] && TARGETS+=("test_$n") ;; esac
done
# koala-bench first (and koala-cli for the side by side's latents): the benchmarks run before the tests are built.
FIRST_TARGETS=(koala-bench test_gpu_models_fused)
[ "$DIFF" = 1 ] && FIRST_TARGETS+=(koala-cli)
if [ "$NO_BUILD" != 1 ]; then
    run cmake --build "$BUILD_DIR" --target "${FIRST_TARGETS[@]}" -j "$JOBS" || { say "gpu-check: build failed"; exit 2; }
    say "gpu-check: ${FIRST_TARGETS[*]} built in $(elapsed) s"
fi
# The fused CUDA kernels against LibTorch's ops on this card (seconds): the "fused" benchmarks run only if it passes.
FUSED_OK=0
if [ "$DRY" = 0 ]; then
    fk=$BUILD_DIR/tests/test_gpu_models_fused
    if [ -x "$fk" ] && timeout 120 "$fk" >"$OUT/fused-kernels.log" 2>&1; then FUSED_OK=1; fi
    say "gpu-check: fused kernels test: $([ $FUSED_OK = 1 ] && echo passed || echo 'FAILED or not built') ($OUT/fused-kernels.log)"
    grep -E "rel err|FAIL|SKIP" "$OUT/fused-kernels.log" 2>/dev/null | head -n 40 | tee -a "$LOG"
fi

# The summary table from whatever JSON exists so far (called after every benchmark and at the end).
write_summary() {
    python3 - "$JSON_DIR" "$OUT/bench.json" "$OUT/summary.md" "$1" "$SIZE" "$STEPS" <<'PY' 2>&1 >"$OUT/summary.stdout"
import glob, json, os, sys
jdir, out_json, out_md, tests, size, steps = sys.argv[1:7]
runs = []
for f in sorted(glob.glob(os.path.join(jdir, "*.json"))):
    with open(f) as fh:
        runs.append(json.load(fh))
    runs[-1]["fused_kernels"] = os.path.basename(f).endswith("-fused.json")
with open(out_json, "w") as fh:
    json.dump(runs, fh, indent=2)
GiB = float(1 << 30)
# docs/performance.md: whole image at 1024², 25 steps, guidance 5, fp16; 700M peak memory default/low.
time_target = {"koala-700m": 0.50, "koala-1b": 0.60, "sdxl-base": 0.90}
mem_target = {("koala-700m", "default"): 6.0, ("koala-700m", "low"): 4.0}
full = size == "1024" and steps == "25"
lines = []
lines.append("| config | device | UNet params | load | encode | UNet step | decode | preview/step | whole image | target | peak alloc | peak reserved | memory target | graphs |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    arch, dt, mem = r["architecture"], r["dtype"], r["memory"]
    name = os.path.basename(r.get("random_config") or r.get("model") or arch)
    if r.get("fused_kernels"):
        name += " +fused"
    t = r["total_seconds_median"]
    tgt = time_target.get(arch) if (full and dt == "fp16" and mem == "default" and r["device"] == "cuda") else None
    tcell = "-" if tgt is None else ("%.2f s %s" % (tgt, "PASS" if t <= tgt else "FAIL"))
    alloc, resv = r["peak_allocated_bytes"] / GiB, r["peak_reserved_bytes"] / GiB
    mt = mem_target.get((arch, mem)) if (full and r["device"] == "cuda") else None
    # Judged on the reserved peak: CUDA-graph pools do not show in the allocated peak during replays.
    mcell = "-" if mt is None else ("%.0f GiB %s" % (mt, "PASS" if resv <= mt else "FAIL"))
    fp = r.get("cuda_fast_path", {})
    g = "%d/%d" % (fp.get("graph_captures", 0), fp.get("graph_replays", 0)) if r["device"] == "cuda" else "-"
    if fp.get("capture_failures"):
        g += " (capture failed)"
    pm = "" if r.get("parameters_match", True) else " MISMATCH"
    lines.append("| %s %s %s | %s | %s%s | %.2f s | %.1f ms | %.1f ms | %.1f ms | %.2f ms | %.3f s | %s | %.2f GiB | %.2f GiB | %s | %s |" % (
        name, dt, mem, r.get("device_name", r["device"]), format(r["unet_parameters"], ","), pm,
        r["load_seconds"], 1e3 * r["encode_seconds"], 1e3 * r["step_median_seconds"], 1e3 * r["decode_seconds"],
        1e3 * r["preview_per_step_seconds"], t, tcell, alloc, resv, mcell, g))
head = "gpu-check: %s, %s steps, guidance 5, median of the runs after a warm-up; tests: %s" % (
    "%sx%s" % (size, size), steps, tests)
text = head + "\n\n" + "\n".join(lines) + "\n"
if not runs:
    text += "\n(no benchmark produced JSON)\n"
sbs = os.path.join(os.path.dirname(out_md), "diffusers-side-by-side.md")
if os.path.exists(sbs):
    with open(sbs) as fh:
        text += "\n" + fh.read()
with open(out_md, "w") as fh:
    fh.write(text)
print(text)
PY
}

TEST_STATUS="not run yet"
DIFF_STATUS="not run"
# Seconds kept for the fixture and GPU tests after the benchmarks (none when they are skipped).
if [ "${KOALA_CHECK_SKIP_TESTS:-0}" = 1 ]; then TEST_RESERVE=${KOALA_CHECK_TEST_RESERVE:-0}
else TEST_RESERVE=${KOALA_CHECK_TEST_RESERVE:-90}; fi
# ---- benchmarks ----------------------------------------------------------------------------------------------------
BENCH=$BUILD_DIR/koala-bench
[ -x "$BENCH" ] || BENCH=$BUILD_DIR/cli/koala-bench
JSON_DIR=$BUILD_DIR/gpu-check-json
mkdir -p "$JSON_DIR"
rm -f "$JSON_DIR"/*.json
for c in $CONFIGS; do
    IFS=: read -r arch dtype mem fused <<<"$c"
    name=$(basename "$arch")-$dtype-$mem
    # A 4th field "fused": the same benchmark with the fused CUDA kernels on (KOALA_FUSED_KERNELS=1), only once
    # tests/engine/gpu_models_fused.cpp has passed on this card (run right after the build, below).
    benv=(env KOALA_FUSED_KERNELS=0)
    if [ "$fused" = fused ]; then
        name=$name-fused
        if [ "$FUSED_OK" != 1 ]; then say "gpu-check: SKIPPED $name: the fused kernels did not pass their test"; continue; fi
        benv=(env KOALA_FUSED_KERNELS=1)
    fi
    left=$(( BUDGET - $(elapsed) - TEST_RESERVE ))
    if [ "$DRY" = 0 ] && [ "$left" -lt 45 ]; then
        say "gpu-check: SKIPPED $name: only $left s of the budget ($BUDGET s, $TEST_RESERVE s kept for the tests) left"
        continue
    fi
    run "${benv[@]}" timeout "$left" "$BENCH" --random-config "$arch" --tokenizer "$ROOT/tests/data/fixtures/tiny-koala-700m" \
        --steps "$STEPS" --width "$SIZE" --height "$SIZE" --guidance 5 --runs "$RUNS" --dtype "$dtype" \
        --device "$DEVICE" --memory "$mem" --scheduler euler --json "$JSON_DIR/$name.json" ||
        say "gpu-check: koala-bench $name FAILED"
    [ "$DRY" = 0 ] && write_summary "not run yet"
done

# ---- diffusers side by side (same card, same random-weight files; after the engine benchmarks) ---------------------
if [ "$DIFF" = 1 ]; then
    left=$(( BUDGET - $(elapsed) - TEST_RESERVE ))
    if [ "$DRY" = 0 ] && [ "$left" -lt 60 ]; then
        say "gpu-check: SKIPPED the diffusers side by side: only $left s of the budget left"
        DIFF_STATUS="skipped (budget)"
    else
        sbs=(env PYTHONUNBUFFERED=1 timeout $(( left + 30 )) "$PY" "$ROOT/tools/gpu/diffusers_side_by_side.py"
             --archs "$DIFF_ARCHS" --out "$OUT" --work "${KOALA_CHECK_SBS_WORK:-/tmp/koala-sbs}"
             --engine-bin "$BUILD_DIR" --device "$DEVICE" --size "$SIZE" --steps "$STEPS" --runs "$DIFF_RUNS"
             --budget "$left")
        [ "$SMOKE" = 1 ] && sbs+=(--dtype fp32)
        if run "${sbs[@]}"; then DIFF_STATUS=passed; else DIFF_STATUS="FAILED (exit $?)"; fi
        say "gpu-check: diffusers side by side $DIFF_STATUS after $(elapsed) s"
        [ "$DRY" = 0 ] && write_summary "not run yet"
    fi
fi

# ---- the KOALA card's U-Net table with latency (issue 11; only when the budget leaves room) ------------------------
if [ "${KOALA_CHECK_CARD_TABLE:-1}" = 1 ] && [ "$DEVICE" = cuda ]; then
    left=$(( BUDGET - $(elapsed) - TEST_RESERVE ))
    if [ "$DRY" = 0 ] && [ "$left" -lt 150 ]; then
        say "gpu-check: SKIPPED koala-bench --card-table --latency: only $left s of the budget left"
    else
        say "+ timeout $left $BENCH --card-table --latency > card-table.md"
        if [ "$DRY" = 0 ]; then
            timeout "$left" "$BENCH" --card-table --latency >"$OUT/card-table.md" 2>"$OUT/card-table.log" ||
                say "gpu-check: koala-bench --card-table --latency FAILED (see card-table.log)"
            tee -a "$LOG" <"$OUT/card-table.md"
        fi
    fi
fi

# ---- tests ---------------------------------------------------------------------------------------------------------
TEST_STATUS=skipped
if [ "${KOALA_CHECK_SKIP_TESTS:-0}" != 1 ]; then
    if [ "$NO_BUILD" != 1 ] && ! run cmake --build "$BUILD_DIR" --target "${TARGETS[@]}" -j "$JOBS"; then
        TEST_STATUS="FAILED (tests did not build)"
    fi
    say "gpu-check: tests built after $(elapsed) s"
    say "+ ctest -L \"$TEST_LABELS\" (log: ctest.log)"
    if [ "$DRY" = 0 ]; then
        # The tests' own TIMEOUT properties override ctest --timeout: the whole ctest runs under `timeout`.
        tleft=$(( BUDGET - $(elapsed) ))
        [ "$tleft" -gt 30 ] || tleft=30
        (cd "$BUILD_DIR" && timeout "$tleft" ctest -L "$TEST_LABELS" --output-on-failure -j 2) >"$OUT/ctest.log" 2>&1
        rc=$?
        tail -n 25 "$OUT/ctest.log" | tee -a "$LOG"
        if [ $rc = 0 ]; then TEST_STATUS=passed; else TEST_STATUS="FAILED (ctest exit $rc)"; fi
    fi
    say "gpu-check: tests $TEST_STATUS after $(elapsed) s"
fi



# ---- table ---------------------------------------------------------------------------------------------------------
[ "$DRY" = 1 ] && { say "gpu-check: dry run done"; exit 0; }
write_summary "$TEST_STATUS"
cat "$OUT/summary.md" | tee -a "$LOG"
say "gpu-check: done in $(elapsed) s"
case "$TEST_STATUS" in FAILED*) exit 1 ;; esac
case "$DIFF_STATUS" in FAILED*) exit 1 ;; esac
exit 0
