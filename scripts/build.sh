#!/usr/bin/env bash
# Configures and builds (Release, Ninja) against the LibTorch that KOALA_TORCH selects (scripts/torch-env.sh):
# build/ for Debian's LibTorch 1.13, build-pypi/ for PyPI's LibTorch 2.11 with CUDA; KOALA_TORCH=both builds both.
# Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
MODE=$(koala_torch_mode)
GEN=Ninja
command -v ninja >/dev/null 2>&1 || GEN="Unix Makefiles"

for m in $(koala_torch_modes "$MODE"); do
  dir=$(koala_build_dir "$m")
  args=(-DCMAKE_BUILD_TYPE=Release)
  if [ "$m" = pypi ]; then
    prefix=$(koala_torch_prefix) || {
      echo "build.sh: no torch in $KOALA_TORCH_VENV: run KOALA_TORCH=pypi scripts/install-deps.sh first" >&2
      exit 1
    }
    # The torch package folder itself, so that TorchConfig.cmake finds its own libtorch.so, not Debian's.
    args+=("-DCMAKE_PREFIX_PATH=$prefix")
    if ! command -v nvcc >/dev/null 2>&1 && nvcc=$(koala_find_nvcc); then
      export PATH="$(dirname "$nvcc"):$PATH"
      export CUDACXX="$nvcc"
    fi
  else
    # Debian's TorchConfig.cmake, even when another LibTorch is on CMAKE_PREFIX_PATH.
    [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] &&
      args+=(-DTorch_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch)
  fi
  echo "build.sh: $dir/ against the $m LibTorch"
  cmake -S . -B "$dir" -G "$GEN" "${args[@]}" "$@"
  # GCC 12 has crashed once here (an internal compiler error reading a precompiled header, not reproducible on the
  # next run): a failed build is resumed once before it counts as failed; a real compile error fails again.
  cmake --build "$dir" -j "$(nproc)" || {
    echo "build.sh: the build failed; resuming it once (a compiler crash is retried, a real error repeats)" >&2
    cmake --build "$dir" -j "$(nproc)"
  }
done
