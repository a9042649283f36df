#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite (what CI runs), once per LibTorch:
# Debian's LibTorch 1.13 (build/) and PyPI's LibTorch 2.11 with CUDA compiled in (build-pypi/, run on the CPU where
# there is no GPU: the gpu tests skip). KOALA_TORCH=debian or pypi runs one of them (scripts/torch-env.sh).
# Then the sanitizer layers, against Debian's LibTorch (scripts/build.sh builds only the executables they run): the
# unit and app layers under address;undefined (build-asan/), the job queue and worker tests under thread
# (build-tsan/). A sanitizer report fails its test (tests/sanitizers/ctest-env.cmake.in). KOALA_SANITIZERS=0 skips
# them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
export KOALA_TORCH=${KOALA_TORCH:-both}
MODE=$(koala_torch_mode) || exit 2
export KOALA_SANITIZERS=${KOALA_SANITIZERS:-1}
T0=$(date +%s)
scripts/install-deps.sh || exit 1
echo "run-tests: dependencies ready after $(( $(date +%s) - T0 )) s"

summary=()
passed_all=0 failed_all=0 rc_all=0

# Runs ctest in build folder $1 with the selection that follows (nothing: every test) and adds its counts to the
# totals; sets rc and line (CTest's "N% tests passed" line).
run_ctest() {
  local dir=$1 log total failed
  shift
  log=$dir/ctest-summary.log
  QT_QPA_PLATFORM=offscreen ctest --test-dir "$dir" "$@" --output-on-failure -j 2 --timeout 900 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
  total=$(sed -n 's/.* out of \([0-9][0-9]*\).*/\1/p' <<<"$line")
  failed=$(sed -n 's/.*passed, \([0-9][0-9]*\) tests failed.*/\1/p' <<<"$line")
  total=${total:-0} failed=${failed:-0}
  [ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
  passed_all=$(( passed_all + total - failed )) failed_all=$(( failed_all + failed ))
}

# Builds (the environment given goes to scripts/build.sh) and runs one layer: $1 build folder, the rest ctest's
# selection. Sets rc, line and tb (build seconds).
build_and_test() {
  local dir=$1 t
  t=$(date +%s)
  if scripts/build.sh; then
    tb=$(( $(date +%s) - t ))
    run_ctest "$@"
  else
    tb=$(( $(date +%s) - t )) rc=1 line="BUILD FAILED"
    failed_all=$(( failed_all + 1 ))
  fi
  [ "$rc" = 0 ] || rc_all=1
}

for m in $(koala_torch_modes "$MODE"); do
  t=$(date +%s)
  dir=$(koala_build_dir "$m")
  # Quick layers first (unit, app), then the model-backed ones; gpu tests skip without a GPU.
  KOALA_TORCH=$m build_and_test "$dir"
  lib=$(grep -h '^KOALA_LIBTORCH_DESCRIPTION:' "$dir/CMakeCache.txt" 2>/dev/null | cut -d= -f2-)
  summary+=("run-tests: $m: ${lib:-LibTorch ?}: ${line:-no test summary}; build $tb s, total $(( $(date +%s) - t )) s")
done

# One sanitizer layer: NAME (build-NAME/), SANITIZERS, LABELS, REGEX (ctest's -L and -R; either may be empty).
sanitizer_layer() {
  local name=$1 san=$2 labels=$3 regex=$4 t sel=()
  t=$(date +%s)
  [ -n "$labels" ] && sel+=(-L "$labels")
  [ -n "$regex" ] && sel+=(-R "$regex")
  KOALA_TORCH=debian KOALA_SANITIZE="$san" KOALA_TEST_LABELS="$labels" KOALA_TEST_REGEX="$regex" \
    build_and_test "build-$name" "${sel[@]}"
  summary+=("run-tests: $name ($san, ${sel[*]}): ${line:-no test summary}; build $tb s, tests $(( $(date +%s) - t - tb )) s, total $(( $(date +%s) - t )) s")
}

if [ "$KOALA_SANITIZERS" != 0 ]; then
  sanitizer_layer asan "address;undefined" 'unit|app' ''
  sanitizer_layer tsan thread '' '^app\.(jobqueue|engineworker)$'
else
  summary+=("run-tests: sanitizer layers skipped (KOALA_SANITIZERS=0)")
fi

echo
printf '%s\n' "${summary[@]}"
echo "run-tests: whole run $(( $(date +%s) - T0 )) s"
echo "tests: $passed_all passed, $failed_all failed"
exit "$rc_all"
