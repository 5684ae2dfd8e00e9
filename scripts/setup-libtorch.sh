#!/usr/bin/env bash
# Sets up libtorch 2.11.0 for tch 0.24.0, once per machine, outside the clone.
#
# Order of preference:
#   1. LIBTORCH already set by the user: checked and used, nothing installed.
#   2. LIBTORCH_USE_PYTORCH=1: the torch of the user's python3 is checked (must be 2.11.x).
#   3. Otherwise PyPI's torch==2.11.0 wheel is pip-installed into
#      ${XDG_CACHE_HOME:-$HOME/.cache}/archsearch/torch-2.11.0 (shared by every clone and CI).
# Then `.libtorch` in the clone is pointed at it; `.cargo/config.toml` hands that to tch's build.
set -euo pipefail

TORCH_VERSION="2.11.0"
NEEDED_GB=8
cd "$(dirname "$0")/.."

die() { printf 'archsearch setup: %s\n' "$*" >&2; exit 1; }

check_libtorch_dir() { # $1: a folder that should hold include/ and lib/
    [ -f "$1/lib/libtorch_cpu.so" ] && [ -d "$1/include" ]
}

link_to() { # $1: libtorch folder
    ln -sfn "$1" .libtorch
    echo "archsearch setup: using libtorch at $1"
}

if [ -n "${LIBTORCH:-}" ]; then
    check_libtorch_dir "$LIBTORCH" || die "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so and include/; point it at a libtorch $TORCH_VERSION folder, or unset it to let setup install one."
    link_to "$LIBTORCH"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 was not found. Install Python 3 with pip (Debian: apt-get install python3 python3-pip), or set LIBTORCH to a libtorch $TORCH_VERSION folder."

if [ "${LIBTORCH_USE_PYTORCH:-}" = "1" ]; then
    dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null) \
        || die "LIBTORCH_USE_PYTORCH=1 but python3 cannot import torch. Run: python3 -m pip install torch==$TORCH_VERSION, or unset LIBTORCH_USE_PYTORCH."
    have=$(python3 -c 'import torch; print(torch.__version__.split("+")[0])')
    case "$have" in
        2.11.*) ;;
        *) die "LIBTORCH_USE_PYTORCH=1 but python3 has torch $have; tch 0.24.0 needs torch $TORCH_VERSION. Run: python3 -m pip install torch==$TORCH_VERSION, or unset LIBTORCH_USE_PYTORCH." ;;
    esac
    link_to "$dir"
    exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/archsearch/torch-$TORCH_VERSION"
if check_libtorch_dir "$cache/torch" && [ -f "$cache/.complete" ]; then
    link_to "$cache/torch"
    exit 0
fi

python3 -m pip --version >/dev/null 2>&1 || die "pip for python3 was not found. Install it (Debian: apt-get install python3-pip), then run make again."
mkdir -p "$(dirname "$cache")" || die "cannot create $(dirname "$cache"); set XDG_CACHE_HOME to a writable folder."
free_kb=$(df -Pk "$(dirname "$cache")" | awk 'NR==2 {print $4}')
if [ "${free_kb:-0}" -lt $((NEEDED_GB * 1024 * 1024)) ]; then
    die "torch $TORCH_VERSION needs about $NEEDED_GB GB free in $(dirname "$cache") (it has $((free_kb / 1024 / 1024)) GB). Free some space or set XDG_CACHE_HOME to a larger disk."
fi

echo "archsearch setup: installing torch==$TORCH_VERSION from PyPI into $cache (once per machine, about 4.6 GB)"
tmp="$cache.partial"
rm -rf "$tmp"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$tmp" "torch==$TORCH_VERSION" \
    || die "pip could not install torch==$TORCH_VERSION (see above). Check the network to PyPI, or set LIBTORCH to an existing libtorch $TORCH_VERSION."
check_libtorch_dir "$tmp/torch" || die "the installed torch wheel has no lib/libtorch_cpu.so; is this Linux x86_64?"
touch "$tmp/.complete"
rm -rf "$cache"
mv "$tmp" "$cache"
link_to "$cache/torch"
