#!/usr/bin/env bash
# Build the ferlite SD-card image: ferlite-VERSION-arm64.img.xz and its bmap, from Debian Bookworm arm64
# packages (or, with --base, from a Raspberry Pi OS Lite image), with ferlite installed by systemd/install.sh.
set -euo pipefail
PROG=build.sh
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IMAGE_DIR/../.." && pwd)
. "$IMAGE_DIR/lib.sh"

OUT=$REPO/dist
CACHE=${FERLITE_IMAGE_CACHE:-/var/cache/ferlite-image}
BASE="" KIOSK=0 XZ=1 PICAMERA2=1
usage() {
    cat <<EOF2
Usage: sudo systemd/image/build.sh [options]

Writes OUT/ferlite-VERSION-arm64.img.xz and OUT/ferlite-VERSION-arm64.img.bmap: a bootable SD-card image
for the Raspberry Pi 3, 3A+, 3B+, 4, 400, CM3, CM4 and Zero 2 W (Debian's arm64 kernel and raspi-firmware),
with ferlite installed by systemd/install.sh, its service enabled, and first-boot settings read from the
card's FAT partition (docs/flash-sd-card.md). Runs on an x86-64 (or arm64) Debian 12 host as root;
arm64 code runs under qemu-user. Downloads (the root file system, .debs, wheels) are cached in CACHE.

Options:
  --out DIR           where the image goes (default: $OUT)
  --cache DIR         download and root file system cache (default: $CACHE; env FERLITE_IMAGE_CACHE)
  --base FILE.img.xz  customise this Raspberry Pi OS Lite image (Bookworm, arm64) instead of building
                      from Debian packages: for the Pi camera (libcamera, picamera2) and the Pi 5
  --no-picamera2      with --base: do not apt-install python3-picamera2 (an image without Raspberry Pi's
                      apt repository)
  --kiosk             add the kiosk screen (ferlite-kiosk.service: cage + cog); it shows the page when
                      ferlite.toml says [http] kiosk = true
  --no-xz             write the raw .img (and its bmap) only
  -h, --help          this help
EOF2
}
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --base) BASE=$(readlink -f "$2"); shift 2 ;;
        --no-picamera2) PICAMERA2=0; shift ;;
        --kiosk) KIOSK=1; shift ;;
        --no-xz) XZ=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option: $1" ;;
    esac
done
WORK=""
finish() {
    local rc=$?
    if [ "$rc" = 0 ]; then end_stage; elif [ -n "$STAGE" ]; then STAGE="$STAGE (FAILED)"; end_stage; fi
    print_timings
    [ -n "$WORK" ] && [ -d "$WORK" ] && [ "${FERLITE_IMAGE_KEEP:-0}" != 1 ] && rm -rf --one-file-system "$WORK"
    [ "$rc" = 0 ] && echo "build.sh: done" || echo "build.sh: FAILED (exit $rc)" >&2
}
trap finish EXIT
trap 'exit 143' TERM INT     # a killed build must not report done

stage "host: checks and packages"
[ "$(id -u)" -eq 0 ] || fail "run as root (it chroots into the arm64 tree and sets file owners)"
[ -z "$BASE" ] || [ -f "$BASE" ] || fail "--base $BASE: no such file"
[ "$(nice)" -lt 10 ] && renice -n 10 -p $$ >/dev/null
need_pkgs mmdebstrap qemu-user-static binfmt-support mtools dosfstools fdisk e2fsprogs bmap-tools xz-utils
need_binfmt
PYTHON=${PYTHON:-$( [ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python3)}
mkdir -p "$CACHE" "$OUT"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
R=$WORK/root FW=$WORK/firmware
echo "cache $CACHE, work $WORK"

stage "wheels: ferlite and its aarch64 cp311 dependencies"
copy_tree "$WORK/src"
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps "$WORK/src" -w "$WORK/dist" \
    || fail "building the project's wheel failed"
WHL=$(ls "$WORK"/dist/ferlite-*.whl)
VERSION=$(basename "$WHL" | cut -d- -f2)
WHEELS=$(bash "$IMAGE_DIR/wheels.sh" "$PYTHON" "$WHL" "$CACHE") || fail "downloading the aarch64 wheels failed"
echo "ferlite $VERSION; wheels: $WHEELS"

if [ -z "$BASE" ]; then
    stage "root file system: Debian Bookworm arm64 (cached)"
    TREE=$(bash "$IMAGE_DIR/rootfs.sh" "$CACHE" | tail -1) || fail "the root file system build failed"
    cp -a "$TREE" "$R"
else
    stage "base image: unpack $(basename "$BASE")"
    bash "$IMAGE_DIR/base.sh" unpack "$BASE" "$WORK" || fail "unpacking $BASE failed"
fi

stage "install.sh inside the image"
mkdir -p "$R/tmp/ferlite" && cp -a "$WORK/src/systemd" "$R/tmp/ferlite/" && cp "$WHL" "$R/tmp/ferlite/"
cp -r "$WHEELS" "$R/tmp/ferlite/wheels"
ARGS=(--from "/tmp/ferlite/$(basename "$WHL")" --wheels /tmp/ferlite/wheels --no-start)
[ -z "$BASE" ] || [ "$PICAMERA2" = 1 ] || ARGS+=(--no-picamera2)
[ -n "$BASE" ] || ARGS+=(--no-picamera2)
[ "$KIOSK" = 1 ] && ARGS+=(--kiosk)
mkdir -p "$CACHE/debs"
APT_CACHE=$CACHE/debs in_arm "$R" bash /tmp/ferlite/systemd/install.sh "${ARGS[@]}" || fail "install.sh failed inside the image"
if [ "$KIOSK" = 1 ]; then
    # install.sh --kiosk turns the screen on; the image leaves that to the card's ferlite.toml ([http] kiosk), so
    # that a Pi without a display does not restart a compositor that has nothing to show on.
    sed -i 's/^kiosk = true$/kiosk = false/' "$R/etc/ferlite/config.toml"
    rm -f "$R/var/cache/apt/archives/"*.deb "$R"/var/lib/apt/lists/*_Packages
fi

stage "image settings: first boot, network, ssh, users"
bash "$IMAGE_DIR/customise.sh" "$R" "$IMAGE_DIR" "$([ -n "$BASE" ] && echo base || echo debian)" \
    || fail "customising the root file system failed"
rm -rf "$R/tmp/ferlite"
# On the FAT partition: the examples to copy to ferlite.toml and firstboot.toml, and what to do.
EXTRA=$WORK/fat-extra
mkdir -p "$EXTRA"
cp "$R"/opt/ferlite/venv/lib/python3*/site-packages/ferlite/edge/data/default.toml "$EXTRA/ferlite.toml.example"
cp "$IMAGE_DIR/firstboot.toml.example" "$IMAGE_DIR/README.txt" "$EXTRA/"

if [ -z "$BASE" ]; then
    # The initramfs depends on the kernel, initramfs-tools and fstab, not on ferlite: it is made once under
    # emulation (about 5 to 10 minutes on 2 cores) and cached keyed by those; raspi-firmware's hook then copies
    # the kernel, initrd and device trees to /boot/firmware and writes config.txt and cmdline.txt.
    stage "initramfs (cached) and the boot partition"
    INITRD_KEY=$( (basename "$TREE"; ls "$R/lib/modules"; cat "$R/etc/fstab"; find "$R/etc/initramfs-tools" -type f \
        -exec cat {} +) | sha256sum | cut -c1-16)
    in_arm "$R" /bin/sh -ec 'rm -f /usr/sbin/update-initramfs
        dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs'
    KVER=$(ls "$R/lib/modules" | sort -V | tail -1)
    if [ -f "$CACHE/initrd-$INITRD_KEY" ]; then
        echo "initramfs: cached $CACHE/initrd-$INITRD_KEY"
        cp "$CACHE/initrd-$INITRD_KEY" "$R/boot/initrd.img-$KVER"
        in_arm "$R" /usr/bin/env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$KVER"
    else
        in_arm "$R" /bin/sh -ec 'update-initramfs -c -k all 2>&1 | grep -v "^W: Possible missing firmware" || true'
        cp "$R/boot/initrd.img-$KVER" "$CACHE/initrd-$INITRD_KEY.partial" && mv "$CACHE/initrd-$INITRD_KEY.partial" "$CACHE/initrd-$INITRD_KEY"
    fi
    ls "$R"/boot/firmware/initrd.img-* >/dev/null 2>&1 \
        || fail "no initrd in /boot/firmware: raspi-firmware's hook did not run"
    grep -q "root=LABEL=RASPIROOT" "$R/boot/firmware/cmdline.txt" || fail "cmdline.txt does not name LABEL=RASPIROOT"
    sed 's/^/  cmdline.txt: /' "$R/boot/firmware/cmdline.txt"
fi

stage "disk image"
NAME=ferlite-$VERSION-arm64
IMG=$OUT/$NAME.img
if [ -z "$BASE" ]; then
    bash "$IMAGE_DIR/assemble.sh" "$R" "$IMG" "$EXTRA"
else
    bash "$IMAGE_DIR/base.sh" pack "$BASE" "$WORK" "$IMG" "$EXTRA"
fi
bmaptool -q create -o "$OUT/$NAME.img.bmap" "$IMG"
if [ "$XZ" = 1 ]; then
    stage "xz"
    rm -f "$IMG.xz"
    nice -n 10 xz -T0 -3 -k "$IMG"
fi
end_stage
ls -l "$OUT/$NAME".img* | sed 's/^/  /'
printf '  raw %s MB, xz %s MB\n' "$(( $(stat -c %s "$IMG") / 1000000 ))" \
    "$([ -f "$IMG.xz" ] && echo $(( $(stat -c %s "$IMG.xz") / 1000000 )) || echo -)"
