#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite (what CI runs), once per LibTorch:
# Debian's LibTorch 1.13 (build/) and PyPI's LibTorch 2.11 with CUDA compiled in (build-pypi/, run on the CPU where
# there is no GPU: the gpu tests skip). KOALA_TORCH=debian or pypi runs one of them (scripts/torch-env.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
export KOALA_TORCH=${KOALA_TORCH:-both}
MODE=$(koala_torch_mode) || exit 2
T0=$(date +%s)
scripts/install-deps.sh || exit 1
echo "run-tests: dependencies ready after $(( $(date +%s) - T0 )) s"

summary=()
passed_all=0 failed_all=0 rc_all=0
for m in $(koala_torch_modes "$MODE"); do
  t=$(date +%s)
  dir=$(koala_build_dir "$m")
  if KOALA_TORCH=$m scripts/build.sh; then
    tb=$(( $(date +%s) - t ))
    log=$dir/ctest-summary.log
    # Quick layers first (unit, app), then the model-backed ones; gpu tests skip without a GPU.
    QT_QPA_PLATFORM=offscreen ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 900 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
    total=$(sed -n 's/.* out of \([0-9][0-9]*\).*/\1/p' <<<"$line")
    failed=$(sed -n 's/.*passed, \([0-9][0-9]*\) tests failed.*/\1/p' <<<"$line")
    total=${total:-0} failed=${failed:-0}
    [ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
    passed_all=$(( passed_all + total - failed )) failed_all=$(( failed_all + failed ))
  else
    tb=$(( $(date +%s) - t )) rc=1 line="BUILD FAILED"
    failed_all=$(( failed_all + 1 ))
  fi
  [ "$rc" = 0 ] || rc_all=1
  lib=$(grep -h '^KOALA_LIBTORCH_DESCRIPTION:' "$dir/CMakeCache.txt" 2>/dev/null | cut -d= -f2-)
  summary+=("run-tests: $m: ${lib:-LibTorch ?}: ${line:-no test summary}; build $tb s, total $(( $(date +%s) - t )) s")
done

echo
printf '%s\n' "${summary[@]}"
echo "run-tests: whole run $(( $(date +%s) - T0 )) s"
echo "tests: $passed_all passed, $failed_all failed"
exit "$rc_all"
