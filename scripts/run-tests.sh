#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# Quick layers first (unit, app), then the model-backed ones; gpu tests skip without a GPU.
QT_QPA_PLATFORM=offscreen ctest --test-dir build --output-on-failure -j 2 --timeout 900
