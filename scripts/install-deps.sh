#!/usr/bin/env bash
# Installs what KOALA Studio needs to build and test on Debian 12. Idempotent: apt runs only when a package is
# missing, pip only when the virtual environment lacks torch 2.11. Run as root or with sudo available.
#
# The LibTorch (scripts/torch-env.sh): KOALA_TORCH=pypi (PyPI's torch==2.11.* wheel with CUDA 13.0, in
# ${XDG_CACHE_HOME:-~/.cache}/koala-studio/torch-2.11, shared by every clone), KOALA_TORCH=debian (libtorch-dev,
# LibTorch 1.13, CPU only), KOALA_TORCH=both; by default pypi where an NVIDIA driver answers, debian otherwise.
#
# libopenblas0-openmp makes Debian's LibTorch do its CPU matrix products through OpenBLAS instead of the reference
# BLAS (see docs/benchmarks.md). The OpenMP build shares LibTorch's OpenMP threads; the pthread build would start its
# own threads inside LibTorch's and oversubscribe the cores (several times slower here).
#
# KOALA_SANITIZERS=1 (scripts/run-tests.sh sets it unless it is 0) adds what its sanitizer layers need: Debian's
# LibTorch (they build against it whatever KOALA_TORCH says) and GCC 12's sanitizer runtimes (libasan8, libubsan1,
# libtsan2; g++ pulls them in on amd64, named here so that the dependency is written down).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
MODE=$(koala_torch_mode)

pkgs=(cmake ninja-build g++ pkg-config qt6-base-dev libgl-dev libyaml-cpp-dev nlohmann-json3-dev
      libutf8proc-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev libcurl4-openssl-dev python3 xvfb xauth
      clang-format)
case "$MODE" in debian|both) pkgs+=(libtorch-dev libopenblas0-openmp) ;; esac
case "$MODE" in pypi|both) pkgs+=(python3 python3-venv) ;; esac
[ "${KOALA_SANITIZERS:-0}" = 0 ] || pkgs+=(libtorch-dev libopenblas0-openmp libasan8 libubsan1 libtsan2)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

case "$MODE" in pypi|both) ;; *) echo "install-deps: LibTorch from Debian (libtorch-dev)"; exit 0 ;; esac

# ---- PyPI's LibTorch ---------------------------------------------------------------------------------------------
# The CUDA build needs the CUDA toolkit whose version torch was built for (Caffe2's cuda.cmake finds nvcc, the headers
# and cuBLAS at configure time).
NVCC=$(koala_find_nvcc) || {
  echo "install-deps: KOALA_TORCH=pypi builds against CUDA: install the NVIDIA CUDA toolkit 13.0 (nvcc, cuBLAS;" >&2
  echo "  NVIDIA's 'cuda-toolkit-13-0' package) or use KOALA_TORCH=debian for the CPU build" >&2
  exit 1
}
NVCC_VERSION=$(koala_nvcc_version "$NVCC")

have=$(koala_torch_venv_version || true)
if [[ "$have" != "$KOALA_TORCH_SERIES".* ]]; then
  # A python3 with a working venv module: the one on PATH, else Debian's own (python3-venv brings ensurepip).
  PY=""
  for cand in "$(command -v python3 || true)" /usr/bin/python3; do
    [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1 && { PY=$cand; break; }
  done
  [ -n "$PY" ] || { echo "install-deps: no python3 with the venv module (apt-get install python3-venv)" >&2; exit 1; }
  echo "install-deps: creating $KOALA_TORCH_VENV with $PY ($("$PY" --version 2>&1))"
  rm -rf "$KOALA_TORCH_VENV"
  mkdir -p "$(dirname "$KOALA_TORCH_VENV")"
  "$PY" -m venv "$KOALA_TORCH_VENV"
  echo "install-deps: pip install '$KOALA_TORCH_PIN' (LibTorch with CUDA; about 4.5 GB with NVIDIA's libraries)"
  "$KOALA_TORCH_VENV/bin/python" -m pip install --disable-pip-version-check -q "$KOALA_TORCH_PIN"
  have=$(koala_torch_venv_version) || { echo "install-deps: torch does not import in $KOALA_TORCH_VENV" >&2; exit 1; }
fi
read -r TORCH_VERSION TORCH_CUDA <<<"$have"
if [ "$TORCH_CUDA" = None ]; then
  echo "install-deps: the torch in $KOALA_TORCH_VENV ($TORCH_VERSION) has no CUDA; remove that folder and rerun" >&2
  exit 1
fi
if [ "$TORCH_CUDA" != "$NVCC_VERSION" ]; then
  echo "install-deps: torch $TORCH_VERSION was built for CUDA $TORCH_CUDA but $NVCC is CUDA $NVCC_VERSION;" >&2
  echo "  install the CUDA $TORCH_CUDA toolkit (or put it first on PATH)" >&2
  exit 1
fi
echo "install-deps: LibTorch $TORCH_VERSION (PyPI, CUDA $TORCH_CUDA) in $KOALA_TORCH_VENV; nvcc $NVCC ($NVCC_VERSION)"
