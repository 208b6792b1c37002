#!/usr/bin/env bash
# Stage 1 of the image build: the Debian Bookworm arm64 root file system (a directory), made with mmdebstrap
# under qemu-user and cached in CACHE keyed by a hash of the package list and the mirrors, so only the first
# build pays for it (13 to 23 minutes of emulated package configuration on 2 cores).
# Usage: rootfs.sh CACHE_DIR   -> prints the root tree's path on its last line
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:?usage: rootfs.sh CACHE_DIR}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
pkgs() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$@" | grep -v '^$' | paste -sd, -; }
INCLUDE=$(pkgs "$HERE/packages.txt")
KEY=$(echo "rootfs-v1 bookworm arm64 minbase $INCLUDE $MIRROR $SECURITY" | sha256sum | cut -c1-16)
TREE=$CACHE/rootfs-$KEY
if [ -d "$TREE" ]; then echo "rootfs: cached $TREE" >&2; echo "$TREE"; exit 0; fi
mkdir -p "$CACHE/debs"
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
echo "rootfs: mmdebstrap arm64 bookworm -> $TREE (packages: $INCLUDE)" >&2
rm -rf --one-file-system "$TREE.partial"
# update-initramfs is diverted while packages install (the kernel and raspi-firmware would each build an
# initramfs under emulation, minutes apiece); build.sh makes it once, after ferlite is in. Downloaded .debs are
# kept in CACHE/debs for the next build.
nice -n 10 mmdebstrap --architectures=arm64 --variant=minbase --components="main non-free-firmware" \
    --format=directory --include="$INCLUDE" \
    --skip=essential/unlink --skip=download/empty \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $CACHE/debs /var/cache/apt/archives/" \
    --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
    --essential-hook='ln -sf /bin/true "$1"/usr/sbin/update-initramfs' \
    --customize-hook="sync-out /var/cache/apt/archives $CACHE/debs" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    bookworm "$TREE.partial" \
    "deb $MIRROR bookworm main non-free-firmware" \
    "deb $MIRROR bookworm-updates main non-free-firmware" \
    "deb $SECURITY bookworm-security main non-free-firmware" >&2
mv "$TREE.partial" "$TREE"
echo "$TREE"
