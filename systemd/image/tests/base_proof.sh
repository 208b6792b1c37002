#!/usr/bin/env bash
# Proof of build.sh --base on a stand-in for Raspberry Pi OS Lite (which cannot be downloaded here): an image
# with Raspberry Pi OS Bookworm's partition layout (MBR; FAT32 "bootfs", 512 MiB from sector 8192, with
# cmdline.txt naming root=PARTUUID=<disk id>-02; ext4 "rootfs" after it; fstab by PARTUUID), its root being
# the cached Debian Bookworm arm64 tree of the Debian build (Raspberry Pi OS is Debian Bookworm plus
# Raspberry Pi's packages). build.sh --base then grows it, runs install.sh in it under qemu-user and adds the
# first-boot files; the checks read the result back without mounting (debugfs, mtools, sfdisk):
# partition table and PARTUUIDs kept, root partition and file system grown, ferlite's venv, unit and config,
# ferlite-firstboot enabled, no SSH host keys, the examples on the FAT partition.
# Usage: base_proof.sh [CACHE]   (root; the Debian build's cache, default /var/cache/ferlite-image)
set -euo pipefail
PROG=base_proof
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$IMAGE_DIR/lib.sh"
CACHE=${1:-${FERLITE_IMAGE_CACHE:-/var/cache/ferlite-image}}
TREE=$(ls -d "$CACHE"/rootfs-* 2>/dev/null | grep -v partial | head -1)
[ -d "$TREE" ] || fail "no cached root tree in $CACHE: run systemd/image/build.sh once"
WORK=$(mktemp -d "$CACHE/base-proof.XXXXXX")
trap 'rc=$?; print_timings; [ "${FERLITE_PROOF_KEEP:-0}" = 1 ] || rm -rf --one-file-system "$WORK"; [ $rc = 0 ] && echo "base_proof: PASS" || echo "base_proof: FAILED" >&2' EXIT
trap 'exit 143' TERM INT

stage "stand-in: Raspberry Pi OS Lite's partition layout, Debian Bookworm arm64 inside"
cp -a "$TREE" "$WORK/root"
mkdir -p "$WORK/fw"
cp -r "$WORK/root/boot/firmware/." "$WORK/fw/" && find "$WORK/root/boot/firmware" -mindepth 1 -delete
DISKID=5e3da3da
echo "console=serial0,115200 console=tty1 root=PARTUUID=$DISKID-02 rootfstype=ext4 fsck.repair=yes rootwait" > "$WORK/fw/cmdline.txt"
printf 'proc /proc proc defaults 0 0\nPARTUUID=%s-01 /boot/firmware vfat defaults 0 2\nPARTUUID=%s-02 / ext4 defaults,noatime 0 1\n' \
    "$DISKID" "$DISKID" > "$WORK/root/etc/fstab"
truncate -s 512M "$WORK/fw.vfat" && mkfs.vfat -F 32 -n bootfs "$WORK/fw.vfat" >/dev/null
mcopy -s -i "$WORK/fw.vfat" "$WORK"/fw/* ::
truncate -s 1400M "$WORK/root.ext4" && mkfs.ext4 -q -L rootfs -d "$WORK/root" "$WORK/root.ext4"
STANDIN=$WORK/standin-raspios-lite-arm64.img
truncate -s $((4 + 512 + 1400))M "$STANDIN"
printf 'label: dos\nlabel-id: 0x%s\nstart=8192, size=1048576, type=c\nstart=1056768, type=83\n' "$DISKID" | sfdisk -q "$STANDIN"
dd if="$WORK/fw.vfat" of="$STANDIN" bs=1M seek=4 conv=notrunc status=none
dd if="$WORK/root.ext4" of="$STANDIN" bs=512 seek=1056768 conv=notrunc status=none
rm -rf "$WORK/root" "$WORK/fw" "$WORK/fw.vfat" "$WORK/root.ext4"
nice -n 10 xz -T0 -0 "$STANDIN"
ls -l "$STANDIN.xz"

stage "build.sh --base (the stand-in)"
bash "$IMAGE_DIR/build.sh" --base "$STANDIN.xz" --no-picamera2 --no-xz --out "$WORK/out" --cache "$CACHE" \
    > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "build.sh --base failed"; }
grep -A12 '^=== timings' "$WORK/build.log"
IMG=$(ls "$WORK"/out/ferlite-*-arm64.img)

stage "checks (read back without mounting)"
sfdisk -d "$IMG" | tee "$WORK/table.txt"
grep -q "label-id: 0x$DISKID" "$WORK/table.txt" || fail "the disk id (and so the PARTUUIDs) changed"
START2=$(sfdisk -J "$IMG" | python3 -c 'import json, sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"])')
[ "$START2" = 1056768 ] || fail "the root partition moved"
dd if="$IMG" of="$WORK/root.ext4" bs=512 skip="$START2" status=none
dumpe2fs -h "$WORK/root.ext4" 2>/dev/null | grep -E '^(Filesystem volume name|Block count|Block size)'
[ "$(dumpe2fs -h "$WORK/root.ext4" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p')" = rootfs ] || fail "the root label changed"
d() { debugfs -R "$1" "$WORK/root.ext4" 2>/dev/null; }
has() { grep -q "$2" <<<"$(d "$1")"; }   # not `d | grep -q`: under pipefail, grep's early exit fails debugfs
has "stat /opt/ferlite/venv/bin/ferlite" "Type: regular" || fail "no /opt/ferlite/venv/bin/ferlite"
has "stat /etc/systemd/system/multi-user.target.wants/ferlite.service" "Type: symlink" || fail "ferlite.service not enabled"
has "stat /etc/systemd/system/multi-user.target.wants/ferlite-firstboot.service" "Type: symlink" || fail "ferlite-firstboot not enabled"
has "stat /etc/ferlite/config.toml" "Type: regular" || fail "no /etc/ferlite/config.toml"
! has "ls /etc/ssh" ssh_host_ || fail "SSH host keys in the image"
has "cat /etc/fstab" "PARTUUID=$DISKID-02" || fail "fstab changed"
mdir -b -i "$IMG@@$((8192 * 512))" :: > "$WORK/fat.txt"
grep -E 'toml|README|cmdline' "$WORK/fat.txt"
grep -q ferlite.toml.example "$WORK/fat.txt" && grep -q firstboot.toml.example "$WORK/fat.txt" || fail "no examples on the FAT partition"
echo "partition table and PARTUUIDs kept; root grown; ferlite installed and enabled; first boot installed"
