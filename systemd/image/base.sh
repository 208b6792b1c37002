#!/usr/bin/env bash
# Stage of build.sh --base: a Raspberry Pi OS Lite image (Bookworm, arm64: a FAT partition "bootfs" and an
# ext4 root "rootfs", found by PARTUUID) opened up and put back, without loop devices or mounts.
#   base.sh unpack BASE.img.xz WORK      -> WORK/base.img (grown by GROW_MB), WORK/root (the root tree)
#   base.sh pack BASE.img.xz WORK OUT.img [FAT_EXTRA_DIR]
# The root partition is grown by GROW_MB (default 1500) for the venv, unpacked with debugfs rdump, and made
# again with mkfs.ext4 -d with the same UUID and label; the partition table (so the PARTUUIDs that
# cmdline.txt and fstab name) is kept. Limits: debugfs does not carry extended attributes (file capabilities,
# e.g. ping's cap_net_raw, become plain files) or hard links (they become copies).
set -euo pipefail
MODE=$1 BASE=$2 WORK=$3
IMG=$WORK/base.img
part() {   # part N FIELD: start or size, in 512-byte sectors, of partition N of IMG
    sfdisk -J "$IMG" | python3 -c 'import json, sys; p = json.load(sys.stdin)["partitiontable"]["partitions"][int(sys.argv[1]) - 1]; print(p[sys.argv[2]])' "$1" "$2"
}
case "$MODE" in
unpack)
    case "$BASE" in *.xz) xz -dc "$BASE" > "$IMG" ;; *) cp --sparse=always "$BASE" "$IMG" ;; esac
    [ "$(sfdisk -J "$IMG" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["partitiontable"]["partitions"]))')" = 2 ] \
        || { echo "base.sh: $BASE: expected two partitions (bootfs, rootfs) as Raspberry Pi OS has" >&2; exit 1; }
    truncate -s "+${GROW_MB:-1500}M" "$IMG"
    echo ", +" | sfdisk -q -N 2 "$IMG"
    START=$(part 2 start) SIZE=$(part 2 size)
    dd if="$IMG" of="$WORK/rootfs.ext4" bs=512 skip="$START" count="$SIZE" status=none
    e2fsck -fy "$WORK/rootfs.ext4" >/dev/null || [ $? -le 1 ]
    mkdir -p "$WORK/root"
    debugfs -R "rdump / $WORK/root" "$WORK/rootfs.ext4" 2>/dev/null
    # rdump puts the tree at WORK/root/ (its root's children) with owners and modes, as root.
    [ -x "$WORK/root/bin/sh" ] || [ -L "$WORK/root/bin" ] || { echo "base.sh: no root tree in partition 2" >&2; exit 1; }
    # The FAT partition's content (/boot/firmware on the device) for the checks and the first-boot files.
    mkdir -p "$WORK/root/boot/firmware"
    echo "base: $(basename "$BASE"): root partition grown to $((SIZE / 2048)) MiB"
    ;;
pack)
    OUT=$4 EXTRA=${5:-}
    START=$(part 2 start) SIZE=$(part 2 size)
    UUID=$(dumpe2fs -h "$WORK/rootfs.ext4" 2>/dev/null | sed -n 's/^Filesystem UUID: *//p')
    LABEL=$(dumpe2fs -h "$WORK/rootfs.ext4" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p')
    rm -f "$WORK/rootfs.ext4"
    truncate -s "$((SIZE * 512))" "$WORK/rootfs.ext4"
    mkfs.ext4 -q -F -U "$UUID" -L "${LABEL:-rootfs}" -d "$WORK/root" "$WORK/rootfs.ext4"
    # Not conv=sparse: the old root file system is still there and its blocks must be overwritten, zeros too.
    dd if="$WORK/rootfs.ext4" of="$IMG" bs=1M oflag=seek_bytes seek="$((START * 512))" conv=notrunc status=none
    if [ -n "$EXTRA" ]; then
        mcopy -o -s -i "$IMG@@$(( $(part 1 start) * 512 ))" "$EXTRA"/* ::
    fi
    mv "$IMG" "$OUT"
    echo "base: $OUT: root $LABEL ($UUID), $((SIZE / 2048)) MiB"
    ;;
*) echo "usage: base.sh unpack|pack ..." >&2; exit 2 ;;
esac
