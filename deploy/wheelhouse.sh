#!/usr/bin/env bash
# Fill deploy/wheelhouse/ with the project wheel and every runtime dependency as a binary wheel for
# CPython 3.11 on manylinux (glibc <= 2.36, Debian bookworm's), so that building the image needs no
# network: the Dockerfile installs with `pip install --no-index --find-links`.
#
# Dependencies are fetched for the image's platform, not the host's: pip is told the target
# interpreter, ABI and manylinux tags and accepts binary wheels only, so nothing is compiled
# against the host. The CPU architecture is the host's (the engine builds for it).
#
# Usage: deploy/wheelhouse.sh    Environment: PYTHON (default python3), any pip variable (PIP_*).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$here/wheelhouse"
python="${PYTHON:-python3}"

case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *)
        echo "wheelhouse.sh: unsupported architecture $(uname -m)" >&2
        exit 1
        ;;
esac

# Every manylinux tag a bookworm image accepts (glibc 2.36), newest first, plus the legacy aliases.
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_${arch}"); done
platforms+=(--platform "manylinux2014_${arch}")

started=$(date +%s.%N)
mkdir -p "$out"
rm -f "$out"/*.whl

# The project itself: a pure wheel, built from pyproject.toml with its declared build backend,
# from a copy of the files git would see (tracked, or untracked and not ignored). Building in the
# work tree would leave build/ behind, and setuptools reuses build/lib: a module deleted from
# the source would live on in the wheel.
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
        (cd "$repo" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
        tar -C "$repo" --null -T - -cf - | tar -C "$src" -xf -
else
    tar -C "$repo" --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
        --exclude=./deploy/wheelhouse -cf - . | tar -C "$src" -xf -
fi
# A fixed SOURCE_DATE_EPOCH makes the wheel byte-for-byte reproducible (zip entry times), so an
# unchanged tree gives an unchanged wheelhouse and `docker build` reuses its cached layers.
# The build backend's output (deprecation notices) is shown only when the build fails.
if ! build_log="$(SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}" \
    "$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$src" 2>&1)"; then
    printf '%s\n' "$build_log" >&2
    echo "wheelhouse.sh: building the project wheel failed" >&2
    exit 1
fi
project_wheel=("$out"/aif_node-*.whl)

# Its runtime dependencies, resolved from the wheel's metadata for the image's interpreter.
"$python" -m pip download --quiet --dest "$out" \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
    "${platforms[@]}" "${project_wheel[0]}"

elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
count=$(find "$out" -name '*.whl' | wc -l)
echo "wheelhouse: $count wheels, $(du -sh "$out" | cut -f1), in ${elapsed}s -> $out" >&2
