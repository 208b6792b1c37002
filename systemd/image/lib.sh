# Shared by build.sh, tests/boot_proof.sh, tests/base_proof.sh and ../tests/aarch64_proof.sh (sourced, not run):
# stage timings, failure, running commands inside an arm64 tree under qemu-user, copying the repository.

STAGE="" STAGE_T0=0 TIMINGS=() T_START=$(date +%s.%N)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
end_stage() {
    [ -n "$STAGE" ] || return 0
    local dt; dt=$(secs "$STAGE_T0" "$(now)")
    TIMINGS+=("$(printf '  %-60s %7s s' "$STAGE" "$dt")")
    printf -- '--- %s: %s s\n' "$STAGE" "$dt"
    STAGE=""
}
stage() { end_stage; STAGE=$1; STAGE_T0=$(now); printf '\n=== [%s] %s\n' "$(date +%T)" "$STAGE"; }
print_timings() {
    printf '\n=== timings\n'
    [ ${#TIMINGS[@]} -gt 0 ] && printf '%s\n' "${TIMINGS[@]}"
    printf '  %-60s %7s s\n' "total" "$(secs "$T_START" "$(now)")"
}
fail() { printf '\n%s: FAIL: %s\n' "${PROG:-image}" "$*" >&2; exit 1; }

# binfmt_misc with qemu-aarch64 (fix-binary), so a chroot into an arm64 tree runs.
need_binfmt() {
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
        || fail "qemu-aarch64 is not registered in binfmt_misc (apt-get install qemu-user-static binfmt-support)"
}

# Install the Debian packages named if they are missing (host side).
need_pkgs() {
    local need=() p
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    echo "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || fail "apt-get install ${need[*]} failed"
}

# in_arm ROOT CMD...: run CMD inside the arm64 tree ROOT under qemu-aarch64, in a private mount namespace
# (nothing stays mounted), with a Pi 4 /proc/cpuinfo (LiteRT's cpuinfo crashes on the x86 one) and the host's
# resolv.conf (apt inside). APT_CACHE, when set, is bind-mounted as /var/cache/apt/archives.
in_arm() {
    local root=$1; shift
    unshare --mount --propagation private -- /bin/sh -ec '
        R=$1 CPUINFO=$2 APT_CACHE=$3; shift 3
        mount -t proc proc "$R/proc"
        mount --bind "$CPUINFO" "$R/proc/cpuinfo"
        mount --rbind /sys "$R/sys"
        mount --rbind /dev "$R/dev"
        mount -t tmpfs tmpfs "$R/run"
        mkdir -p "$R/run/systemd/resolve"
        cp -L /etc/resolv.conf "$R/run/systemd/resolve/stub-resolv.conf"
        [ -f "$R/etc/resolv.conf" ] && [ ! -L "$R/etc/resolv.conf" ] && mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
        [ -n "$APT_CACHE" ] && mount --bind "$APT_CACHE" "$R/var/cache/apt/archives"
        exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TMPDIR=/tmp QEMU_CPU=cortex-a72 DEBIAN_FRONTEND=noninteractive "$@"
    ' in_arm "$root" "$IMAGE_DIR/../tests/fake-cpuinfo-pi4" "${APT_CACHE:-}" "$@"
}

# copy_tree DEST: the repository's tracked and untracked-but-not-ignored files.
copy_tree() {
    mkdir -p "$1"
    (cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -xf - -C "$1"
}
