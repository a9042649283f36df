#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp) with Debian's clang in build-fuzz/ and runs each in turn.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   run every target (or the named ones) for SECONDS each (default 60)
#   scripts/fuzz.sh -runs=N [TARGET...]     run each for N executions instead
#
# Every target starts from its seed corpus (tests/fuzz/corpus/<name>/, read only) plus a working corpus and crash
# folder under KOALA_FUZZ_WORK (default /tmp/koala-fuzz-<user>/): <work>/corpus/<name>/, <work>/crashes/<name>/.
# Prints one line per target: executions, exec/s, coverage (cov = edges, ft = features, from libFuzzer's final
# stats), corpus size and crashes; the full log is <work>/logs/<name>.log. Exits 1 when a target found something:
# fix it and keep the input under tests/fuzz/regressions/<name>/ (the replay test fuzz.<name> runs it in CI).
# Environment: KOALA_FUZZ_JOBS_NICE (default 10), KOALA_FUZZ_FLAGS (extra libFuzzer flags), CC/CXX (clang/clang++),
# KOALA_FUZZ_NO_BUILD=1 (run what build-fuzz/ holds without building).
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=(-max_total_time=60)
if [ $# -gt 0 ]; then
  case "$1" in
    -runs=*) LIMIT=("$1"); shift ;;
    ''|*[!0-9]*) ;;
    *) LIMIT=(-max_total_time="$1"); shift ;;
  esac
fi
WANT=("$@")

BUILD=build-fuzz
WORK=${KOALA_FUZZ_WORK:-/tmp/koala-fuzz-$(id -un)}
NICE=${KOALA_FUZZ_JOBS_NICE:-10}
CC=${CC:-clang}
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz.sh: $CXX not found (apt-get install clang)" >&2; exit 2; }

if [ ! -f "$BUILD/build.ninja" ]; then
  args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKOALA_FUZZ=ON
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g"
        "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
        "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
  [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] &&
    args+=(-DTorch_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch)
  CC=$CC CXX=$CXX cmake -S . -B "$BUILD" "${args[@]}"
fi
mapfile -t ALL < <(ninja -C "$BUILD" -t targets all | sed -n 's/^\(fuzz_[a-z0-9_]*\): phony$/\1/p' | sort)
[ ${#ALL[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz targets in $BUILD" >&2; exit 2; }
TARGETS=()
for t in "${ALL[@]}"; do
  name=${t#fuzz_}
  if [ ${#WANT[@]} -eq 0 ] || printf '%s\n' "${WANT[@]}" | grep -qx "$name"; then TARGETS+=("$t"); fi
done
[ -n "${KOALA_FUZZ_NO_BUILD:-}" ] || nice -n "$NICE" ninja -C "$BUILD" "${TARGETS[@]}"

mkdir -p "$WORK/logs"
# ASan: no leak reports from LibTorch's and Qt's process-lifetime allocations are expected, and none are
# suppressed; alloc/dealloc mismatches are checked.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export QT_QPA_PLATFORM=offscreen
found=0
printf '%-16s %12s %9s %7s %7s %7s %8s  %s\n' target executions exec/s cov ft corpus crashes time
for t in "${TARGETS[@]}"; do
  name=${t#fuzz_}
  corpus=$WORK/corpus/$name crashes=$WORK/crashes/$name log=$WORK/logs/$name.log
  mkdir -p "$corpus" "$crashes"
  seeds=()
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  [ -d "tests/fuzz/regressions/$name" ] && seeds+=("tests/fuzz/regressions/$name")
  start=$(date +%s)
  rc=0
  # shellcheck disable=SC2086
  nice -n "$NICE" "$BUILD/tests/fuzz/$t" "${LIMIT[@]}" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$crashes/" ${KOALA_FUZZ_FLAGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$log" | tail -n 1; }
  line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  ncrash=$(find "$crashes" -type f | wc -l)
  printf '%-16s %12s %9s %7s %7s %7s %8s  %ss\n' "$name" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "$ncrash" "$secs"
  if [ "$rc" -ne 0 ] || [ "$ncrash" -gt 0 ]; then
    found=1
    echo "  -> $name: exit $rc; artifacts in $crashes/, log $log" >&2
    grep -m 3 -E 'ERROR: |runtime error|unexpected exception|==ABORTING|Timeout|out-of-memory' "$log" | sed 's/^/     /' >&2 || true
  fi
done
exit $found
