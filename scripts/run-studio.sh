#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and starts KOALA Studio. Arguments go to koala-studio
# (e.g. --model ~/.cache/huggingface/hub/models--etri-vilab--koala-700m-llava-cap).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/ui/koala-studio "$@"
