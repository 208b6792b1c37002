#!/usr/bin/env bash
# Proof: the ferlite SD-card image boots and runs, under qemu-system-aarch64 (-M virt, Cortex-A72, software
# emulation, the image's own kernel and initrd, user-mode network with forwarded ports).
#
#   boot_proof.sh IMAGE [--kiosk-shot PNG] [--update] [--reboot-broken]
#
# IMAGE: dist/ferlite-VERSION-arm64.img or .img.xz (systemd/image/build.sh). On a copy of it, grown by 1 GiB
# as a bigger card would be, the FAT partition gets a firstboot.toml (hostname, time zone, Wi-Fi, an SSH key
# made here) and a ferlite.toml (the bundled sample clip, looping; HTTP on 0.0.0.0:8080 with a token; MQTT to
# a mosquitto started here on the host's loopback, 10.0.2.2 from the guest). Checks, within TIMEOUT seconds:
#   /api/status through the forwarded port counts frames; the broker got availability "online", a state message
#   and Home Assistant discovery; SSH with the key works and a password is not even offered; `systemctl
#   is-system-running` is "running"; the root file system was grown; firstboot.toml and ferlite.toml are gone
#   from the FAT partition (ferlite-status.txt says what was applied); avahi answers as HOSTNAME.local.
# Reports: boot-to-READY (the service's READY=1 on the guest's clock, and /api/status answering on the host's),
# the service's resident memory, its `systemd-analyze security` exposure.
# --update: then the update of docs/flash-sd-card.md: this checkout's wheel and systemd/ copied over SSH and
#   install.sh run there; the config and the log must be kept, and the service must come back with frames.
# --reboot-broken: then a broken ferlite.toml is put on the card and the image booted again: the service must
#   run on the previous config, and the reason must be in the journal and in ferlite-config-error.txt.
# --kiosk-shot PNG: (an image built with --kiosk) [http] kiosk = true, a virtio GPU without 3D, and QEMU's
#   screendump of the screen once it shows the kiosk page with a face's label (kiosk_shot.py); the kiosk unit
#   must not have restarted; the memory of its compositor and browser is reported.
# Environment: TIMEOUT (default 600), KIOSK_TIMEOUT (the page on the screen, from the kiosk unit's start;
#   default 420), FERLITE_PROOF_KEEP=1 (keep the work folder), QEMU_SMP (default 2).
set -euo pipefail
PROG=boot_proof
IMAGE=${1:?usage: boot_proof.sh IMAGE [--kiosk-shot PNG] [--update] [--reboot-broken]}; shift
SHOT="" BROKEN=0 UPDATE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --update) UPDATE=1; shift ;;
        --kiosk-shot) SHOT=$(readlink -f "$2"); shift 2 ;;
        --reboot-broken) BROKEN=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
TIMEOUT=${TIMEOUT:-600}
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$IMAGE_DIR/lib.sh"
REPO=$(cd "$IMAGE_DIR/../.." && pwd)
# A python with ferlite[report] (ferlite report on the copied log; the wheel for --update): PYTHON, the active
# venv, the checkout's .venv, else python3.
PY=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
[ -n "$PY" ] || { [ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python; } || PY=python3
for tool in qemu-system-aarch64 mosquitto mosquitto_sub mcopy mdir ssh ssh-keygen curl sfdisk; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install qemu-system-arm mosquitto mosquitto-clients mtools openssh-client curl fdisk)"
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferlite-boot.XXXXXX")
QEMU_PID="" BROKER_PID="" SUB_PID=""
finish() {
    local rc=$?
    [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null
    [ -n "$SUB_PID" ] && kill "$SUB_PID" 2>/dev/null
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null
    if [ "$rc" = 0 ]; then end_stage; elif [ -n "$STAGE" ]; then STAGE="$STAGE (FAILED)"; end_stage; fi
    print_timings
    if [ "$rc" != 0 ] && [ -f "$WORK/console.log" ]; then echo "--- last console lines"; tail -40 "$WORK/console.log"; fi
    if [ "${FERLITE_PROOF_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    [ "$rc" = 0 ] && echo "boot_proof: PASS" || echo "boot_proof: FAILED (exit $rc)" >&2
}
trap finish EXIT
trap 'exit 143' TERM INT     # a killed proof must not report PASS
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SSH_PORT=$(free_port) HTTP_PORT=$(free_port) MQTT_PORT=$(free_port)
HOST=ferlite-proof TOKEN=proof-token-0123456789abcdef
IMG=$WORK/disk.img FAT_OFF=$((4 * 1024 * 1024))

stage "image: copy, grow by 1 GiB, first-boot files on the FAT partition"
BMAP=${IMAGE%.xz}.bmap
if [ -f "$BMAP" ] && command -v bmaptool >/dev/null; then
    bmaptool -q copy --bmap "$BMAP" "$IMAGE" "$IMG"      # as docs/flash-sd-card.md flashes a card
else
    case "$IMAGE" in *.xz) xz -dc "$IMAGE" > "$IMG" ;; *) cp --sparse=always "$IMAGE" "$IMG" ;; esac
fi
SIZE0=$(stat -c %s "$IMG")
truncate -s +1G "$IMG"
ssh-keygen -q -t ed25519 -N "" -C proof@host -f "$WORK/key"
cat > "$WORK/firstboot.toml" <<EOT
hostname = "$HOST"
timezone = "Europe/Berlin"
[wifi]
country = "DE"
ssid = "proof network"
passphrase = "not-a-real-passphrase"
[ssh]
user = "admin"
authorized_keys = ["$(cat "$WORK/key.pub")"]
EOT
CLIP=/opt/ferlite/venv/lib/python3.11/site-packages/ferlite/edge/data/sample.mp4
cat > "$WORK/ferlite.toml" <<EOT
[source]
spec = "$CLIP"
loop = true
[http]
enabled = true
listen = "0.0.0.0:8080"
token = "$TOKEN"
kiosk = $([ -n "$SHOT" ] && echo true || echo false)
[mqtt]
enabled = true
host = "10.0.2.2"
port = $MQTT_PORT
EOT
mcopy -i "$IMG@@$FAT_OFF" "$WORK/firstboot.toml" "$WORK/ferlite.toml" ::
KERNEL=$(mdir -b -i "$IMG@@$FAT_OFF" :: | sed 's|^::/||' | grep '^vmlinuz-' | sort -V | tail -1)
INITRD=$(mdir -b -i "$IMG@@$FAT_OFF" :: | sed 's|^::/||' | grep '^initrd.img-' | sort -V | tail -1)
[ -n "$KERNEL" ] && [ -n "$INITRD" ] || fail "no vmlinuz-*/initrd.img-* on the image's FAT partition"
mcopy -i "$IMG@@$FAT_OFF" "::$KERNEL" "$WORK/vmlinuz"
mcopy -i "$IMG@@$FAT_OFF" "::$INITRD" "$WORK/initrd"
echo "kernel $KERNEL, initrd $INITRD; image $((SIZE0 / 1048576)) MiB -> $(( $(stat -c %s "$IMG") / 1048576 )) MiB"

stage "broker: mosquitto on 127.0.0.1:$MQTT_PORT"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" > "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 & BROKER_PID=$!
sleep 1
mosquitto_sub -p "$MQTT_PORT" -h 127.0.0.1 -v -t 'ferlite/#' -t 'homeassistant/#' > "$WORK/mqtt.txt" 2>&1 & SUB_PID=$!

boot() {   # boot [extra qemu args...]: start qemu in the background, QEMU_T0 = its start
    local display=(-display none)
    [ -n "$SHOT" ] && display=(-device virtio-gpu-pci,xres=1280,yres=720 -display none -device virtio-keyboard-pci)
    QEMU_T0=$(now)
    nice -n 10 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "${QEMU_SMP:-2}" -m 2048 -no-reboot \
        -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" \
        -append "root=LABEL=RASPIROOT rw net.ifnames=0 rootwait console=ttyAMA0 console=tty0" \
        -drive file="$IMG",if=virtio,format=raw \
        -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080 \
        -device virtio-net-pci,netdev=n0 "${display[@]}" \
        -monitor unix:"$WORK/monitor.sock",server,nowait -serial file:"$WORK/console.log" "$@" &
    QEMU_PID=$!
}
SSH=(ssh -i "$WORK/key" -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR admin@127.0.0.1)
status() { curl -s -m 10 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/api/status"; }
frames() { status | python3 -c 'import json, sys; print(json.load(sys.stdin).get("frames", 0))' 2>/dev/null || echo 0; }
wait_for() {   # wait_for WHAT CMD...: until CMD succeeds, within TIMEOUT of QEMU_T0
    local what=$1; shift
    until "$@" >/dev/null 2>&1; do
        kill -0 "$QEMU_PID" 2>/dev/null || fail "qemu exited while waiting for $what"
        [ "$(secs "$QEMU_T0" "$(now)" | cut -d. -f1)" -lt "$TIMEOUT" ] || fail "no $what within $TIMEOUT s"
        sleep 2
    done
    echo "$what: $(secs "$QEMU_T0" "$(now)") s after qemu started"
}
has_frames() { [ "$(frames)" -gt 0 ]; }

stage "boot: qemu-system-aarch64 -M virt -cpu cortex-a72 (TCG)"
boot
wait_for "SSH with the key" "${SSH[@]}" true
wait_for "/api/status with frames counted" has_frames
T_API=$(secs "$QEMU_T0" "$(now)")
wait_for "system started (not 'starting')" sh -c "! ${SSH[*]} systemctl is-system-running | grep -qx starting"
# Whole, not through head: under pipefail a closed pipe fails the proof (json.tool exits 32, EPIPE).
status | python3 -m json.tool

stage "checks inside the guest (over SSH)"
"${SSH[@]}" sudo -n sh -s > "$WORK/guest.txt" 2>&1 <<'EOT' || true
echo "system: $(systemctl is-system-running)"
echo "failed: $(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd' ')"
echo "hostname: $(hostname)"
echo "timezone: $(readlink /etc/localtime)"
echo "ready_us: $(systemctl show ferlite -p ActiveEnterTimestampMonotonic --value)"
echo "firstboot_us: $(systemctl show ferlite-firstboot -p ActiveEnterTimestampMonotonic --value)"
echo "rss_kb: $(ps -o rss= -p "$(systemctl show ferlite -p MainPID --value)")"
echo "restarts: $(systemctl show ferlite -p NRestarts --value)"
echo "root_size: $(df -B1M --output=size / | tail -1 | tr -d ' ')"
echo "fat: $(ls /boot/firmware | grep -E '\.(toml|txt)$' | paste -sd' ')"
echo "wifi_conf: $(stat -c '%a %U' /etc/wpa_supplicant/wpa_supplicant-wlan0.conf)"
echo "wifi_plain: $(grep -c not-a-real-passphrase /etc/wpa_supplicant/wpa_supplicant-wlan0.conf || true)"
echo "avahi: $(journalctl -b -u avahi-daemon --no-pager | grep -o 'Host name is [^ ]*' | tail -1)"
echo "avahi_conflicts: $(journalctl -b -u avahi-daemon --no-pager | grep -c 'Host name conflict' || true)"
echo "security: $(systemd-analyze security ferlite.service --no-pager | tail -1)"
echo "shadow_pw: $(awk -F: 'length($2) > 2 {print $1}' /etc/shadow | paste -sd' ')"
echo "--- ferlite-status.txt"; cat /boot/firmware/ferlite-status.txt
echo "--- journal ferlite-firstboot"; journalctl -b -u ferlite-firstboot --no-pager -o cat | tail -15
echo "--- journal ferlite"; journalctl -b -u ferlite --no-pager -o cat | tail -8
echo "--- journal avahi-daemon"; journalctl -b -u avahi-daemon --no-pager -o cat | grep -v '^Joining\|^New relevant\|^Leaving' | tail -8
EOT
cat "$WORK/guest.txt"
g() { sed -n "s/^$1: //p" "$WORK/guest.txt" | head -1; }
[ "$(g system)" = running ] || fail "systemctl is-system-running: $(g system); failed units: $(g failed)"
[ "$(g hostname)" = "$HOST" ] || fail "hostname is $(g hostname), not $HOST"
[ "$(g timezone)" = /usr/share/zoneinfo/Europe/Berlin ] || fail "time zone not applied"
ROOT0=$(( (SIZE0 / 1048576) - 260 ))
[ "$(g root_size)" -gt $((ROOT0 + 700)) ] || fail "root file system not grown: $(g root_size) MiB (partition was about $ROOT0 MiB)"
case " $(g fat) " in *" firstboot.toml "*|*" ferlite.toml "*) fail "first-boot files still on the FAT partition: $(g fat)" ;; esac
[ "$(g wifi_conf)" = "600 root" ] && [ "$(g wifi_plain)" = 0 ] || fail "the Wi-Fi settings are readable or hold the passphrase"
[ "$(g avahi)" = "Host name is $HOST.local." ] && [ "$(g avahi_conflicts)" = 0 ] \
    || fail "avahi: '$(g avahi)' after $(g avahi_conflicts) name conflict(s)"
[ -z "$(g shadow_pw)" ] || fail "users with a password: $(g shadow_pw)"
"${SSH[@]}" sudo -n true || fail "sudo without a password for the SSH user"
PW=$(ssh -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no \
    -o PreferredAuthentications=password,keyboard-interactive -o BatchMode=yes -o ConnectTimeout=10 admin@127.0.0.1 true 2>&1 || true)
echo "password login: $PW"
echo "$PW" | grep -q "Permission denied (publickey)" || fail "password login was not refused as key-only: $PW"

stage "broker: what the service published"
sleep 3
grep -q '^ferlite/.*/availability online$' "$WORK/mqtt.txt" || fail "no availability 'online' on the broker"
grep -q '^ferlite/.*/state {' "$WORK/mqtt.txt" || fail "no state message on the broker"
grep -q '^homeassistant/.*/config {' "$WORK/mqtt.txt" || fail "no Home Assistant discovery on the broker"
grep -E '^(ferlite/.*/(availability|state)|homeassistant/[^ ]*) ' "$WORK/mqtt.txt" | cut -c1-150 | sort -u -t' ' -k1,1 > "$WORK/topics.txt"
sed -n 1,8p "$WORK/topics.txt"

stage "the log: copied off the device, ferlite report"
mkdir -p "$WORK/log"
scp -q -P "$SSH_PORT" -i "$WORK/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
    -o LogLevel=ERROR 'admin@127.0.0.1:/var/lib/ferlite/expressions.db*' "$WORK/log/" || fail "scp of the log failed"
if "$PY" -c 'import ferlite.edge.logbook, pandas' 2>/dev/null; then
    "$PY" -m ferlite report "$WORK/log/expressions.db" --out "$WORK/report" > "$WORK/report.txt"
    sed -n 1,20p "$WORK/report.txt"
    [ -s "$WORK/report/labels.csv" ] || fail "ferlite report wrote no labels.csv"
else
    echo "skipping ferlite report: $PY lacks ferlite[report] (the log was copied: $(ls "$WORK/log"))"
fi

if [ -n "$SHOT" ]; then
    stage "kiosk screen: the page with a face's label, QEMU screendump"
    wait_for "the kiosk browser" "${SSH[@]}" systemctl is-active ferlite-kiosk
    # Until the screen shows the page (under emulation WebKit takes a minute or more to paint it), within
    # KIOSK_TIMEOUT of the unit's start: a screendump every 10 s, checked by kiosk_shot.py.
    KIOSK_T0=$(now)
    until { echo "screendump $WORK/screen.ppm" | python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.read().encode()); time.sleep(3)' "$WORK/monitor.sock"
            "$PY" "$IMAGE_DIR/tests/kiosk_shot.py" "$WORK/screen.ppm" "$SHOT" > "$WORK/shot.txt" 2>&1; }; do
        kill -0 "$QEMU_PID" 2>/dev/null || fail "qemu exited while waiting for the kiosk page"
        [ "$(secs "$KIOSK_T0" "$(now)" | cut -d. -f1)" -lt "${KIOSK_TIMEOUT:-420}" ] \
            || fail "the screen did not show the kiosk page within ${KIOSK_TIMEOUT:-420} s: $(cat "$WORK/shot.txt")"
        sleep 10
    done
    cat "$WORK/shot.txt"
    echo "the kiosk page on the screen: $(secs "$QEMU_T0" "$(now)") s after qemu started"
    RESTARTS=$("${SSH[@]}" systemctl show ferlite-kiosk -p NRestarts --value)
    [ "$RESTARTS" = 0 ] || { "${SSH[@]}" sudo -n journalctl -b -u ferlite-kiosk -o cat --no-pager | tail -8
        fail "the kiosk screen restarted $RESTARTS times (journal above)"; }
    # Memory of the compositor and the browser's processes: proportional set size (shared pages counted once,
    # as bench/kiosk_browsers.py counts them) and the unit's cgroup (page cache included).
    "${SSH[@]}" sudo -n sh -s <<'EOT' > "$WORK/kiosk-mem.txt"
cg=/sys/fs/cgroup$(systemctl show ferlite-kiosk -p ControlGroup --value)
for p in $(cat "$cg/cgroup.procs"); do echo "$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup) $(cat /proc/$p/comm)"; done
echo "cgroup $(( $(cat "$cg/memory.current") / 1024 ))"
EOT
    cat "$WORK/kiosk-mem.txt"
    KIOSK_PSS=$(awk '$2 != "" && $1 != "cgroup" {s += $1} END {printf "%d", s / 1024}' "$WORK/kiosk-mem.txt")
    KIOSK_CG=$(awk '$1 == "cgroup" {printf "%d", $2 / 1024}' "$WORK/kiosk-mem.txt")
fi

if [ "$UPDATE" = 1 ]; then
    stage "update: install.sh again over SSH (keeps the config and the log)"
    "$PY" -m pip wheel -q --disable-pip-version-check --no-deps "$REPO" -w "$WORK/update/wheels"
    WHL=$(basename "$(ls "$WORK"/update/wheels/ferlite-*.whl)")
    cp -r "$REPO/systemd" "$WORK/update/"
    "${SSH[@]}" sudo -n md5sum /etc/ferlite/config.toml > "$WORK/before.txt"
    scp -q -r -P "$SSH_PORT" -i "$WORK/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o LogLevel=ERROR "$WORK/update/wheels" "$WORK/update/systemd" admin@127.0.0.1:
    T_UP=$(now)
    "${SSH[@]}" sudo systemd/install.sh --from "wheels/$WHL" --wheels wheels --no-picamera2 2>&1 | tail -6 \
        || fail "install.sh over SSH failed"
    echo "install.sh over SSH: $(secs "$T_UP" "$(now)") s"
    "${SSH[@]}" sudo -n md5sum /etc/ferlite/config.toml | cmp - "$WORK/before.txt" \
        || fail "the update changed /etc/ferlite/config.toml"
    "${SSH[@]}" sudo -n test -s /var/lib/ferlite/expressions.db || fail "the update lost the log"
    wait_for "/api/status with frames after the update" has_frames
fi

if [ "$BROKEN" = 1 ]; then
    stage "second boot: a broken ferlite.toml keeps the previous config"
    "${SSH[@]}" sudo -n systemctl poweroff || true
    wait "$QEMU_PID" || true; QEMU_PID=""
    printf '[source]\nspec = "%s"\nloop = true\nfps = -3\n[http]\nenabled = true\nlisten = "0.0.0.0:8080"\n' "$CLIP" > "$WORK/ferlite.toml"
    mcopy -o -i "$IMG@@$FAT_OFF" "$WORK/ferlite.toml" ::
    boot
    wait_for "/api/status with frames counted (the previous config)" has_frames
    "${SSH[@]}" sudo -n sh -s > "$WORK/broken.txt" 2>&1 <<'EOT' || true
ls /boot/firmware; cat /boot/firmware/ferlite-config-error.txt; journalctl -b -u ferlite-firstboot -o cat --no-pager | tail -5
EOT
    cat "$WORK/broken.txt"
    grep -qx ferlite.toml "$WORK/broken.txt" || fail "the broken ferlite.toml was removed from the card"
    grep -q "NOT taken" "$WORK/broken.txt" || fail "the journal does not say the broken ferlite.toml was not taken"
    grep -q "fps" "$WORK/broken.txt" || fail "the reason (source.fps) is not given"
fi

stage "report"
READY_S=$(awk -v u="$(g ready_us)" 'BEGIN { printf "%.1f", u / 1e6 }')
printf '  %-44s %s\n' "image (raw, as built)" "$((SIZE0 / 1048576)) MiB" \
    "boot to READY=1 (guest clock, since kernel start)" "$READY_S s" \
    "/api/status with frames (host, since qemu start)" "$T_API s" \
    "ferlite service resident memory" "$(( $(g rss_kb) / 1024 )) MiB" \
    "ferlite service restarts (a watchdog's, under load)" "$(g restarts)" \
    "systemd-analyze security ferlite.service" "$(g security | sed 's/.*: //')" \
    "root file system after growing" "$(g root_size) MiB"
[ -z "${KIOSK_PSS:-}" ] || printf '  %-44s %s\n' "kiosk screen (cage + cog): PSS of its processes" "$KIOSK_PSS MiB" \
    "kiosk screen: its cgroup's memory (page cache included)" "$KIOSK_CG MiB"
