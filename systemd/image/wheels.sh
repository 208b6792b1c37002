#!/usr/bin/env bash
# The aarch64 cp311 wheels ferlite[edge] needs on Debian Bookworm / Raspberry Pi OS Bookworm (numpy pinned to
# Debian's 1.24.2, OpenCV < 4.12 as install.sh pins it), downloaded on the host (pip inside the emulated image
# cannot always verify a package proxy's certificate) and cached keyed by the wheel's requirements.
# Usage: wheels.sh PYTHON FERLITE_WHL CACHE_DIR   -> prints the wheel folder
set -euo pipefail
PYTHON=$1 WHL=$2 CACHE=$3
PINS=("numpy==1.24.2" "opencv-python-headless<4.12")
PLATFORMS=(--platform manylinux2014_aarch64)
# ai-edge-litert 2.x is tagged manylinux_2_27 only, and pip download does no tag expansion: list them all.
for x in $(seq 17 36); do PLATFORMS+=(--platform "manylinux_2_${x}_aarch64"); done
REQS=$(unzip -p "$WHL" '*.dist-info/METADATA' 2>/dev/null | grep '^Requires-Dist:' | sort \
    || "$PYTHON" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); m = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")); print("\n".join(sorted(l for l in z.read(m).decode().splitlines() if l.startswith("Requires-Dist:"))))' "$WHL")
KEY=$(printf '%s\n' "$REQS" "${PINS[@]}" "${PLATFORMS[*]}" cp311 | sha256sum | cut -c1-12)
DIR=$CACHE/wheels-aarch64-cp311-$KEY
if [ ! -d "$DIR" ]; then
    rm -rf "$DIR.partial"
    "$PYTHON" -m pip download -q --disable-pip-version-check -d "$DIR.partial" --only-binary=:all: \
        "${PLATFORMS[@]}" --python-version 3.11 --implementation cp --abi cp311 "$WHL[edge]" "${PINS[@]}" >&2
    rm -f "$DIR.partial"/ferlite-*.whl
    ls "$DIR.partial" | grep -q '^ai_edge_litert-2\.' || { echo "wheels.sh: no ai-edge-litert 2.x aarch64 wheel" >&2; exit 1; }
    mv "$DIR.partial" "$DIR"
fi
echo "$DIR"
