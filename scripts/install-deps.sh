#!/usr/bin/env bash
# Installs what KOALA Studio needs to build and test on Debian 12 (idempotent: apt only runs when something is
# missing). Run as root or with sudo available. libopenblas0-openmp makes LibTorch's CPU matrix products go through
# OpenBLAS instead of the reference BLAS (see docs/benchmarks.md). The OpenMP build shares LibTorch's OpenMP threads;
# the pthread build would start its own threads inside LibTorch's and oversubscribe the cores (several times slower here).
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libtorch-dev qt6-base-dev libgl-dev libyaml-cpp-dev nlohmann-json3-dev
      libutf8proc-dev zlib1g-dev libopenblas0-openmp xvfb xauth)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
