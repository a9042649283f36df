#!/usr/bin/env bash
# Configures and builds (Release, Ninja) against the LibTorch that KOALA_TORCH selects (scripts/torch-env.sh):
# build/ for Debian's LibTorch 1.13, build-pypi/ for PyPI's LibTorch 2.11 with CUDA; KOALA_TORCH=both builds both.
# Extra arguments go to cmake's configure step.
#
# Sanitizer builds (what scripts/run-tests.sh adds after the normal ones), against Debian's LibTorch only:
#   KOALA_SANITIZE="address;undefined"  build-asan/ (RelWithDebInfo, -DKOALA_SANITIZE=address;undefined)
#   KOALA_SANITIZE=thread               build-tsan/
# KOALA_TEST_LABELS / KOALA_TEST_REGEX (ctest's -L / -R) build only the executables of the tests they select, instead
# of everything (LibTorch code under a sanitizer compiles slowly).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
MODE=$(koala_torch_mode)
GEN=Ninja
command -v ninja >/dev/null 2>&1 || GEN="Unix Makefiles"
SANITIZE=${KOALA_SANITIZE:-}
if [ -n "$SANITIZE" ]; then
  case "$SANITIZE" in
    "address;undefined") SANDIR=build-asan ;;
    thread) SANDIR=build-tsan ;;
    *) echo "build.sh: KOALA_SANITIZE='$SANITIZE': expected 'address;undefined' or thread" >&2; exit 2 ;;
  esac
  MODE=debian
fi

# The executables (build-folder paths, which are build targets) of the tests that KOALA_TEST_LABELS/KOALA_TEST_REGEX
# select in the configured folder $1; a test run by another program (cmake -P) needs nothing built.
test_targets() {
  local dir=$1 abs name sel=()
  abs=$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$dir/CMakeCache.txt")
  [ -n "${KOALA_TEST_LABELS:-}" ] && sel+=(-L "$KOALA_TEST_LABELS")
  [ -n "${KOALA_TEST_REGEX:-}" ] && sel+=(-R "$KOALA_TEST_REGEX")
  ctest --test-dir "$dir" -N "${sel[@]}" | sed -n 's/^ *Test *#[0-9]*: //p' | while read -r name; do
    grep -rhF --include=CTestTestfile.cmake "add_test([=[$name]=] \"$abs/" "$dir" |
      sed -n "s|^add_test(\[=\[[^]]*\]=\] \"$abs/\([^\"]*\)\".*|\1|p" || true
  done | sort -u
}

for m in $(koala_torch_modes "$MODE"); do
  dir=$(koala_build_dir "$m")
  args=(-DCMAKE_BUILD_TYPE=Release)
  if [ -n "$SANITIZE" ]; then
    dir=$SANDIR
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DKOALA_SANITIZE=$SANITIZE")
  fi
  if [ "$m" = pypi ]; then
    prefix=$(koala_torch_prefix) || {
      echo "build.sh: no torch in $KOALA_TORCH_VENV: run KOALA_TORCH=pypi scripts/install-deps.sh first" >&2
      exit 1
    }
    # The torch package folder itself, so that TorchConfig.cmake finds its own libtorch.so, not Debian's.
    args+=("-DCMAKE_PREFIX_PATH=$prefix")
    if ! command -v nvcc >/dev/null 2>&1 && nvcc=$(koala_find_nvcc); then
      PATH="$(dirname "$nvcc"):$PATH"
      export PATH
      export CUDACXX="$nvcc"
    fi
  else
    # Debian's TorchConfig.cmake, even when another LibTorch is on CMAKE_PREFIX_PATH.
    [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] &&
      args+=(-DTorch_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch)
  fi
  echo "build.sh: $dir/ against the $m LibTorch${SANITIZE:+, sanitizers $SANITIZE}"
  cmake -S . -B "$dir" -G "$GEN" "${args[@]}" "$@"
  targets=()
  if [ -n "${KOALA_TEST_LABELS:-}${KOALA_TEST_REGEX:-}" ]; then
    mapfile -t targets < <(test_targets "$dir")
    [ "${#targets[@]}" -gt 0 ] || { echo "build.sh: no test selected in $dir" >&2; exit 1; }
    echo "build.sh: building the ${#targets[@]} test executables selected (-L '${KOALA_TEST_LABELS:-}'" \
      "-R '${KOALA_TEST_REGEX:-}')"
    targets=(--target "${targets[@]}")
  fi
  # GCC 12 has crashed once here (an internal compiler error reading a precompiled header, not reproducible on the
  # next run): a failed build is resumed once before it counts as failed; a real compile error fails again.
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}" || {
    echo "build.sh: the build failed; resuming it once (a compiler crash is retried, a real error repeats)" >&2
    cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
  }
done
