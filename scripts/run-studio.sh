#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and starts KOALA Studio: PyPI's LibTorch 2.11 with CUDA where an
# NVIDIA driver answers, Debian's LibTorch 1.13 (CPU) otherwise; KOALA_TORCH=pypi|debian chooses (scripts/torch-env.sh).
# Arguments go to koala-studio (e.g. --model ~/.cache/huggingface/hub/models--etri-vilab--koala-700m-llava-cap).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
MODE=$(koala_torch_mode)
[ "$MODE" = both ] && MODE=pypi
export KOALA_TORCH=$MODE
scripts/install-deps.sh
scripts/build.sh
exec "$(koala_build_dir "$MODE")/ui/koala-studio" "$@"
