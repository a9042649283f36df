#!/usr/bin/env bash
# Screenshots of the real KOALA Studio window for docs/screenshots/ (and the README), made under Xvfb with the tiny
# fixture models (random weights: the pictures are noise, the window around them is real): the first start (no model:
# the model manager page), generating with the live preview, the gallery, a comparison of two models, the inpainting
# canvas, and the gallery in the dark theme. The studio drives itself through its hidden --screenshots DIR option
# (ui/main.cpp) and saves QWidget::grab() PNGs at 1000x700; everything it writes (settings, gallery, queue) goes to a
# temporary folder.
#
#   scripts/screenshots.sh [OUT_DIR]      (default docs/screenshots; BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/screenshots}
BUILD=${BUILD_DIR:-build}
STUDIO=$BUILD/ui/koala-studio

if [ ! -x "$STUDIO" ] || [ -n "$(find ui app -newer "$STUDIO" -name '*.cpp' -print -quit)" ]; then
    if [ -f "$BUILD/build.ninja" ]; then
        flock /tmp/koala-build.lock ninja -C "$BUILD" koala-studio
    else
        scripts/build.sh
    fi
fi
command -v xvfb-run >/dev/null || { echo "xvfb-run is needed (apt-get install xvfb)" >&2; exit 1; }

FIXTURES=tests/data/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT" "$TMP/hf-empty" "$TMP/first" "$TMP/tour"

run() {  # run NAME ARGS...: one studio run with its own settings, output folder and an empty Hugging Face cache
    local name=$1
    shift
    HF_HUB_CACHE="$TMP/hf-empty" HF_HOME="$TMP/hf-home" XDG_CONFIG_HOME="$TMP/$name/config" \
        XDG_DATA_HOME="$TMP/$name/data" QT_QPA_PLATFORM=xcb \
        xvfb-run -a -s "-screen 0 1280x800x24" \
        "$STUDIO" --settings "$TMP/$name/settings.ini" --output "$TMP/$name/out" \
        --presets-dir "$TMP/$name/presets" --screenshots "$TMP/shots" "$@"
}
printf '[engine]\ndevice=cpu\nprecision=fp32\n' >"$TMP/first/settings.ini"
cp "$TMP/first/settings.ini" "$TMP/tour/settings.ini"

run first
run tour --model "$FIXTURES/tiny-koala-700m" --model "$FIXTURES/tiny-koala-1b"

# Small PNGs: 256 colours where ImageMagick or a Python with Pillow is there (the window is flat colours and text).
PY=
for p in python3 "$HOME/.cache/koala-studio/torch-2.11/bin/python"; do
    if "$p" -c 'import PIL' 2>/dev/null; then PY=$p; break; fi
done
for f in "$TMP"/shots/*.png; do
    out="$OUT/$(basename "$f")"
    if convert -version 2>/dev/null | grep -q ImageMagick; then
        convert "$f" -strip -colors 256 PNG8:"$out"
    elif [ -n "$PY" ]; then
        "$PY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").quantize(256).save(sys.argv[2], optimize=True)' "$f" "$out"
    else
        cp "$f" "$out"
    fi
done
ls -l "$OUT"
