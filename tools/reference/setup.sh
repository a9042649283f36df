#!/usr/bin/env bash
# Installs the reference harness's Python packages (tools/reference/requirements.txt: exact pins of diffusers,
# transformers, safetensors, peft) into the project's torch venv, next to its torch==2.11.*.
#
#   tools/reference/setup.sh
#
# The venv is ${KOALA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/koala-studio/torch-2.11}; scripts/install-deps.sh
# creates it (KOALA_TORCH=pypi) and owns torch there. This script never installs, upgrades or downgrades torch
# (pip runs with torch constrained to the version already installed) and installs nothing when every pin is already
# satisfied, so running it twice is harmless.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${KOALA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/koala-studio/torch-2.11}"
py="$venv/bin/python"

die() { echo "tools/reference/setup.sh: $*" >&2; exit 1; }

[[ -x "$py" ]] || die "no Python venv at $venv (set KOALA_TORCH_VENV to use another one).
Create it first with:  KOALA_TORCH=pypi scripts/install-deps.sh"

torch_version="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null)" ||
  die "the venv at $venv has no torch.
Install it first with:  KOALA_TORCH=pypi scripts/install-deps.sh"
case "$torch_version" in
  2.11.*) ;;
  *) die "the venv at $venv has torch $torch_version, the harness is pinned to torch==2.11.*.
Reinstall it with:  KOALA_TORCH=pypi scripts/install-deps.sh" ;;
esac

# Which pins are not installed at exactly their version?
missing="$("$py" - "$req" <<'PY'
import importlib.metadata as m, re, sys
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, want = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
    try:
        have = m.version(name)
    except m.PackageNotFoundError:
        have = None
    if have != want:
        print(f"{name}=={want} (installed: {have or 'none'})")
PY
)"

if [[ -z "$missing" ]]; then
  echo "tools/reference/setup.sh: every pin in requirements.txt is installed in $venv (torch $torch_version); nothing to do."
  exit 0
fi

echo "tools/reference/setup.sh: installing into $venv (torch $torch_version stays):"
echo "$missing" | sed 's/^/  /'
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_version" >"$constraints"
"$py" -m pip install --disable-pip-version-check -r "$req" -c "$constraints"

still="$("$py" - "$req" <<'PY'
import importlib.metadata as m, re, sys
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        name, want = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
        if m.version(name) != want:
            print(name)
PY
)"
[[ -z "$still" ]] || die "after pip install these pins are still not satisfied: $still"
after="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))')"
[[ "$after" == "$torch_version" ]] || die "torch changed from $torch_version to $after (it must not)"
"$py" -c 'import diffusers, transformers, safetensors, peft, torch' ||
  die "the packages installed but do not import; see the error above"
echo "tools/reference/setup.sh: done (torch $after)."
