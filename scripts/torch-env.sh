# Sourced by install-deps.sh, build.sh, run-studio.sh and run-tests.sh: which LibTorch a build uses.
#
#   KOALA_TORCH=pypi     PyPI's torch==2.11.* wheel (LibTorch 2.11 with CUDA 13.0) in a virtual environment outside
#                        the clone, shared by every clone and CI: KOALA_TORCH_VENV, by default
#                        ${XDG_CACHE_HOME:-~/.cache}/koala-studio/torch-2.11. Build folder: build-pypi/.
#   KOALA_TORCH=debian   Debian's libtorch-dev (LibTorch 1.13, CPU only). Build folder: build/.
#   KOALA_TORCH=both     both of the above (what the test command builds and runs).
#   unset or auto        pypi on a machine with an NVIDIA driver (nvidia-smi answers), debian otherwise.
# shellcheck shell=bash

KOALA_TORCH_PIN='torch==2.11.*'
KOALA_TORCH_SERIES=2.11
KOALA_TORCH_VENV=${KOALA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/koala-studio/torch-$KOALA_TORCH_SERIES}

koala_has_nvidia_driver() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

# Prints pypi, debian or both (for KOALA_TORCH=both), or fails on an unknown value.
koala_torch_mode() {
    case "${KOALA_TORCH:-auto}" in
        pypi|debian|both) echo "${KOALA_TORCH}" ;;
        auto|"") if koala_has_nvidia_driver; then echo pypi; else echo debian; fi ;;
        *) echo "KOALA_TORCH='${KOALA_TORCH}': expected pypi, debian, both or auto" >&2; return 2 ;;
    esac
}

# The modes a mode stands for, one per line ("both" → debian, pypi).
koala_torch_modes() {
    case "$1" in both) printf 'debian\npypi\n' ;; *) echo "$1" ;; esac
}

koala_build_dir() {
    case "$1" in pypi) echo build-pypi ;; *) echo build ;; esac
}

# The torch package folder of the virtual environment (its share/cmake holds TorchConfig.cmake), or nothing.
koala_torch_prefix() {
    [ -x "$KOALA_TORCH_VENV/bin/python" ] || return 1
    "$KOALA_TORCH_VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null
}

# "2.11.0+cu130 13.0" (version, CUDA version) of the venv's torch, or nothing.
koala_torch_venv_version() {
    [ -x "$KOALA_TORCH_VENV/bin/python" ] || return 1
    "$KOALA_TORCH_VENV/bin/python" -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>/dev/null
}

# The local CUDA toolkit's nvcc: on PATH, else the usual install folders.
koala_find_nvcc() {
    if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return 0; fi
    local d
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-13.0; do
        [ -n "$d" ] && [ -x "$d/bin/nvcc" ] && { echo "$d/bin/nvcc"; return 0; }
    done
    return 1
}

# "13.0" from `nvcc --version`.
koala_nvcc_version() {
    "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}
