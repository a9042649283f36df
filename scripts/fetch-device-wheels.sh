#!/bin/bash
# Fetches, HERE (the development machine, which has PyPI), the Python packages the GPU machine lacks for
# tools/gpu/diffusers_side_by_side.py, into .whl/ (ignored by git), and checks that the working tree, .device-deps and
# .whl together fit the device tool's 64 MiB. The GPU machine has no network.
#
#   scripts/fetch-device-wheels.sh                       # diffusers 0.42.1 (the one package missing there)
#   scripts/fetch-device-wheels.sh --with-transformers   # + transformers 5.24.0 (does not fit at present)
#
# Each wheel is fetched with the device README's recipe (`pip download --no-deps --only-binary=:all:
# --python-version 3.12 --implementation cp --platform manylinux...`) and then, since the 6.1 MiB diffusers wheel
# does not fit beside the ~56 MiB working tree and ~4.6 MiB .device-deps, stored as .whl/NAME-VERSION.tar.xz: the
# wheel's files (package + .dist-info) in one xz archive, 1.8 MiB for diffusers. Both are pure-Python wheels, so
# unpacking them into a folder on PYTHONPATH is what `pip install --target` does; gpu-check.sh --with-diffusers
# does that on the device (python3's tarfile into /tmp/site; plain .whl files there are pip-installed as the README
# says). --keep-wheels keeps the .whl files instead (when there is room).
#
# What the GPU machine has (/work/.library/device/KINDS.md, read 2026-11): Python 3.12, torch 2.11.0,
# transformers 5.17.0, huggingface_hub 1.33.0, safetensors 0.8.0, tokenizers 0.23.2, regex, requests, filelock,
# numpy, pillow, packaging, pyyaml, tqdm, typer, zipp - and no diffusers. diffusers 0.42.1 needs
# huggingface-hub>=1.32 (1.33 there), safetensors>=0.8 (0.8.0 there), importlib_metadata only on Python < 3.8
# (diffusers/utils/import_utils.py). transformers 5.17.0 there is the version the fixtures were made with.
# Environment: PYTHON (python with pip; default the reference venv's, else python3), DIFFUSERS_VERSION (0.42.1),
# TRANSFORMERS_VERSION (5.24.0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WITH_TRANSFORMERS=0
KEEP_WHEELS=0
for a in "$@"; do
    case "$a" in
        --with-transformers) WITH_TRANSFORMERS=1 ;;
        --keep-wheels) KEEP_WHEELS=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "fetch-device-wheels: unknown argument $a" >&2; exit 1 ;;
    esac
done
VENV_PY=${KOALA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/koala-studio/torch-2.11}/bin/python
PYTHON=${PYTHON:-$( [ -x "$VENV_PY" ] && echo "$VENV_PY" || echo python3 )}
PKGS=("diffusers==${DIFFUSERS_VERSION:-0.42.1}")
[ "$WITH_TRANSFORMERS" = 1 ] && PKGS+=("transformers==${TRANSFORMERS_VERSION:-5.24.0}")

mkdir -p .whl
# One version of each package (two stop the whole install on the device): start from an empty .whl/.
rm -f .whl/*.whl .whl/*.tar.xz
dl=$(mktemp -d); trap 'rm -rf "$dl"' EXIT
# The device README's recipe: CPython 3.12, manylinux x86-64, binary only, no dependencies.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dl" "${PKGS[@]}"

echo "fetch-device-wheels: .whl/"
for w in "$dl"/*.whl; do
    base=$(basename "$w" .whl)
    deps=$(unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' |
        sed 's/Requires-Dist: //' | tr '\n' ' ')
    case "$base" in *-py3-none-any|*-py2.py3-none-any) pure=1 ;; *) pure=0 ;; esac
    if [ "$KEEP_WHEELS" = 1 ] || [ "$pure" = 0 ]; then
        cp "$w" .whl/
        out=.whl/$(basename "$w")
    else
        name_ver=$(echo "$base" | cut -d- -f1,2)
        mkdir "$dl/$name_ver"
        (cd "$dl/$name_ver" && unzip -q "$w")
        out=.whl/$name_ver.tar.xz
        tar -C "$dl/$name_ver" --owner=0 --group=0 --sort=name -cf - . | xz -9e -T2 >"$out"
    fi
    awk -v f="$out" -v a="$(stat -c %s "$w")" -v b="$(stat -c %s "$out")" \
        'BEGIN{printf "  %-50s %5.2f MiB (wheel %5.2f MiB)\n", f, b/1048576, a/1048576}'
    echo "    requires: $deps"
done

# What travels: tracked + untracked-not-ignored files, plus the carried .device-deps and .whl.
bytes_of() { python3 -c 'import os,sys
t=0
for line in sys.stdin.read().split("\0"):
    if line and os.path.isfile(line) and not os.path.islink(line): t+=os.path.getsize(line)
print(t)'; }
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | bytes_of)
deps=0; [ -d .device-deps ] && deps=$(find .device-deps -type f -print0 | bytes_of)
whl=$(find .whl -type f -print0 | bytes_of)
total=$((tree + deps + whl))
mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b/1048576}'; }
echo "fetch-device-wheels: working tree $(mib "$tree") + .device-deps $(mib "$deps")$([ -d .device-deps ] || echo ' (missing: run ../shared/tools/device-deps.sh .device-deps; about 4.6 MiB)') + .whl $(mib "$whl") = $(mib "$total") of 64 MiB"
if [ "$total" -gt $((62 * 1048576)) ] && [ -d .device-deps/usr/share/doc ]; then
    echo "fetch-device-wheels: little room left: rm -rf .device-deps/usr/share/doc frees $(mib "$(find .device-deps/usr/share/doc -type f -print0 | bytes_of)") (documentation only)"
fi
if [ "$total" -gt $((64 * 1048576)) ]; then
    echo "fetch-device-wheels: OVER the device tool's 64 MiB: the call would be refused" >&2
    exit 1
fi
[ -d .device-deps ] || [ $((total + 5 * 1048576)) -le $((64 * 1048576)) ] ||
    { echo "fetch-device-wheels: with .device-deps (~4.6 MiB) it would be over 64 MiB" >&2; exit 1; }
exit 0
