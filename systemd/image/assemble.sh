#!/usr/bin/env bash
# Stage of build.sh: the disk image from the root tree, without loop devices: the FAT partition (label
# RASPIFIRM, 256 MiB, the Pi's boot files from ROOT/boot/firmware) by mkfs.vfat + mtools, the root partition
# (label RASPIROOT, ext4) by mkfs.ext4 -d, the partition table by sfdisk.
# Usage: assemble.sh ROOT OUT.img [FIRMWARE_EXTRA_DIR]
set -euo pipefail
R=$1 IMG=$2 EXTRA=${3:-}
WORK=$(mktemp -d "$(dirname "$IMG")/assemble.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FW_MB=256 START_MB=4
# The FAT content leaves the root tree (it is mounted over /boot/firmware at boot).
mkdir -p "$WORK/fw"
cp -r "$R/boot/firmware/." "$WORK/fw/"
[ -z "$EXTRA" ] || cp -r "$EXTRA/." "$WORK/fw/"
find "$R/boot/firmware" -mindepth 1 -delete
# Root: the files plus 30% (and 200 MB) of room; the card's first boot grows it to the whole card.
used_mb=$(du -s --block-size=1M --apparent-size "$R" | cut -f1)
ROOT_MB=$(( used_mb * 13 / 10 + 200 ))
truncate -s "${ROOT_MB}M" "$WORK/root.ext4"
mkfs.ext4 -q -F -L RASPIROOT -E root_owner=0:0 -d "$R" "$WORK/root.ext4"
truncate -s "${FW_MB}M" "$WORK/fw.vfat"
mkfs.vfat -F 32 -n RASPIFIRM "$WORK/fw.vfat" >/dev/null
mcopy -s -i "$WORK/fw.vfat" "$WORK"/fw/* ::
rm -f "$IMG"
truncate -s "$(( START_MB + FW_MB + ROOT_MB ))M" "$IMG"
printf 'label: dos\nstart=%sMiB, size=%sMiB, type=c, bootable\nstart=%sMiB, type=83\n' \
    "$START_MB" "$FW_MB" "$(( START_MB + FW_MB ))" | sfdisk -q "$IMG"
dd if="$WORK/fw.vfat" of="$IMG" bs=1M seek="$START_MB" conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$IMG" bs=1M seek="$(( START_MB + FW_MB ))" conv=notrunc,sparse status=none
echo "assemble: $IMG: FAT ${FW_MB} MiB, root ${ROOT_MB} MiB (${used_mb} MB of files)"
