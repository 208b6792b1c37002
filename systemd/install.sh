#!/usr/bin/env bash
# Install ferlite as a systemd service on Raspberry Pi OS Bookworm (arm64; also any Debian 12).
# Idempotent: run it again to upgrade or repair; it never overwrites an existing /etc/ferlite/config.toml.
set -euo pipefail

VENV=/opt/ferlite/venv
SHARE=/opt/ferlite/systemd
CONF_DIR=/etc/ferlite
CONF=$CONF_DIR/config.toml
UNIT=ferlite.service
UNIT_DIR=/etc/systemd/system
USER_NAME=ferlite
GROUP_CAMERA=video
STATE_DIR=/var/lib/ferlite
SYSUSERS_DIR=/etc/sysusers.d
# apt's picamera2 (and simplejpeg) are built against Debian's numpy 1.24: keep the venv on numpy 1.x,
# and so on OpenCV < 4.12 (4.12+ requires numpy >= 2).
PI_PINS=("numpy<2" "opencv-python-headless<4.12")
# --kiosk: the kiosk screen (ferlite-kiosk.service): a Wayland kiosk compositor and a light browser, from Debian
# (Bookworm's cage 0.1.4 will not start without the Xwayland binary, though cog does not use it).
KIOSK_PKGS=(cage cog seatd xwayland libgl1-mesa-dri fonts-dejavu-core)
KIOSK_UNIT=ferlite-kiosk.service

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FROM=$(dirname "$SCRIPT_DIR")
WHEELS=""
PICAMERA2=1
START=1
ENABLE=1
KIOSK=0

usage() {
    cat <<EOF
Usage: sudo $(basename "$0") [options]

Install ferlite as the systemd service $UNIT (Raspberry Pi OS Bookworm / Debian 12):
  1. apt: python3-picamera2, python3-venv, python3-numpy, procps (only those missing; apt-get update only if needed)
  2. venv $VENV with --system-site-packages (it sees apt's picamera2 and numpy)
  3. pip: ferlite[edge] with the Pi pins ${PI_PINS[*]}, then an import and model-load check
  4. system user '$USER_NAME' in group '$GROUP_CAMERA' (systemd-sysusers, or useradd when it is absent)
  5. $CONF from the packaged default (edge/data/default.toml), only if it does not exist
     yet; then \`ferlite check\` of the config, model and detector on the sample photo
  6. $UNIT_DIR/$UNIT, checked with systemd-analyze verify; a copy of the unit,
     systemd/README.md and uninstall.sh in $SHARE
  7. systemctl enable, then (re)start the service
  8. with --kiosk: apt ${KIOSK_PKGS[*]}, the user ferlite-kiosk,
     $UNIT_DIR/$KIOSK_UNIT (enabled), and [http] kiosk = true in $CONF

Options:
  --from PATH       a ferlite wheel (.whl) or project folder to install
                    (default: the repository this script is in: $FROM)
  --wheels DIR      offline: pip --no-index --find-links DIR (DIR must hold every wheel needed, for this
                    machine's platform; to install from a project folder it must also hold setuptools>=68
                    and wheel, so prefer --from a built wheel)
  --no-picamera2    do not apt-install python3-picamera2 (a machine without Raspberry Pi's apt repository,
                    or a USB camera only)
  --no-enable       do not enable the service (implies --no-start)
  --no-start        do not start (or restart) the service now; it is still enabled for the next boot
  --kiosk           also show the kiosk page full screen on this device's display at boot (cage + cog);
                    turn it off again with [http] kiosk = false in $CONF
  -h, --help        show this help

Without a running systemd (a chroot or an image build) only the start is skipped, with a message:
systemd-analyze verify and systemctl enable work offline. Remove with uninstall.sh.
EOF
}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --from) [ $# -ge 2 ] || die "--from needs a path"; FROM=$2; shift 2 ;;
        --from=*) FROM=${1#*=}; shift ;;
        --wheels) [ $# -ge 2 ] || die "--wheels needs a folder"; WHEELS=$2; shift 2 ;;
        --wheels=*) WHEELS=${1#*=}; shift ;;
        --no-picamera2) PICAMERA2=0; shift ;;
        --no-start) START=0; shift ;;
        --kiosk) KIOSK=1; shift ;;
        --no-enable) ENABLE=0; START=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
command -v apt-get >/dev/null || die "apt-get not found: this script is for Raspberry Pi OS / Debian"
[ -e "$FROM" ] || die "--from $FROM: no such file or folder"
FROM=$(cd "$(dirname "$FROM")" && pwd)/$(basename "$FROM")
if [ -d "$FROM" ]; then
    [ -f "$FROM/pyproject.toml" ] || die "--from $FROM: not a project folder (no pyproject.toml)"
else
    case "$FROM" in *.whl) ;; *) die "--from $FROM: expected a .whl file or a project folder" ;; esac
fi
if [ -n "$WHEELS" ]; then
    [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
    WHEELS=$(cd "$WHEELS" && pwd)
fi
[ -f "$SCRIPT_DIR/$UNIT" ] || die "$SCRIPT_DIR/$UNIT not found (the unit file ships beside this script)"

systemd_running() { [ -d /run/systemd/system ]; }   # sd_booted(): systemd is PID 1

# 1. apt packages ---------------------------------------------------------------------------------
APT_PKGS=(python3-venv python3-numpy procps)   # procps: /bin/kill, the unit's ExecReload
[ "$PICAMERA2" = 1 ] && APT_PKGS=(python3-picamera2 "${APT_PKGS[@]}")
[ "$KIOSK" = 1 ] && APT_PKGS+=("${KIOSK_PKGS[@]}")
missing=()
for p in "${APT_PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update || note "apt-get update failed; trying the install with the current package lists"
    apt-get install -y --no-install-recommends "${missing[@]}"
else
    say "apt: ${APT_PKGS[*]} already installed"
fi
[ "$PICAMERA2" = 1 ] || note "skipping python3-picamera2 (--no-picamera2)"

# 2. venv ------------------------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && grep -qE '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null; then
    say "venv: $VENV exists"
else
    say "venv: creating $VENV (--system-site-packages)"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv --system-site-packages "$VENV"
fi
PY=$VENV/bin/python

# 3. ferlite ---------------------------------------------------------------------------------------
PIP=("$PY" -m pip --disable-pip-version-check --no-input install)
[ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
SPEC="ferlite[edge] @ file://$FROM"
already=0
"$PY" -m pip --disable-pip-version-check show -q ferlite >/dev/null 2>&1 && already=1
say "pip: installing $SPEC with ${PI_PINS[*]}${WHEELS:+ (offline from $WHEELS)}"
"${PIP[@]}" "${PI_PINS[@]}" "$SPEC"
if [ "$already" = 1 ]; then
    # pip keeps an installed ferlite of the same version: replace it so the files are the ones given.
    say "pip: reinstalling ferlite from $FROM (it was already installed)"
    "${PIP[@]}" --no-deps --force-reinstall "$SPEC"
fi

say "check: imports and the bundled model"
check_picamera2=$PICAMERA2
[ "$(dpkg-query -W -f='${db:Status-Status}' python3-picamera2 2>/dev/null || true)" = installed ] && check_picamera2=1
"$PY" - "$check_picamera2" <<'EOF'
import sys

from importlib.metadata import version

import cv2
import numpy

import ferlite
from ferlite.edge.classification.classifier import ExpressionClassifier

assert int(numpy.__version__.split(".")[0]) < 2, f"numpy {numpy.__version__} in the venv: picamera2 needs numpy < 2"
clf = ExpressionClassifier()
print(f"    python {sys.version.split()[0]}, numpy {numpy.__version__} ({numpy.__file__}),")
print(f"    opencv {cv2.__version__}, ai-edge-litert {version('ai-edge-litert')}, ferlite {ferlite.__file__}")
print(f"    model {clf.model_path.name}: input {clf.input_shape}, backend {clf.backend}")
if sys.argv[1] == "1":
    import picamera2
    print(f"    picamera2 {picamera2.__file__}")
EOF
"$VENV/bin/ferlite" --help >/dev/null

# 4. user ------------------------------------------------------------------------------------------
getent group "$GROUP_CAMERA" >/dev/null || groupadd --system "$GROUP_CAMERA"
if command -v systemd-sysusers >/dev/null && [ -f "$SCRIPT_DIR/ferlite.sysusers.conf" ]; then
    say "user: $USER_NAME via systemd-sysusers ($SYSUSERS_DIR/ferlite.conf)"
    install -D -m 0644 "$SCRIPT_DIR/ferlite.sysusers.conf" "$SYSUSERS_DIR/ferlite.conf"
    systemd-sysusers "$SYSUSERS_DIR/ferlite.conf"
elif id -u "$USER_NAME" >/dev/null 2>&1; then
    say "user: $USER_NAME exists"
else
    say "user: creating system user $USER_NAME (useradd)"
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "ferlite expression recognition" "$USER_NAME"
fi
id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$GROUP_CAMERA" || usermod -aG "$GROUP_CAMERA" "$USER_NAME"
note "$(id "$USER_NAME")"

# 5. config ----------------------------------------------------------------------------------------
if [ -e "$CONF" ]; then
    say "config: keeping the existing $CONF"
else
    DEFAULT=$("$PY" -c 'import importlib.resources as r; print(r.files("ferlite.edge") / "data" / "default.toml")')
    if [ -f "$DEFAULT" ]; then
        say "config: writing $CONF (from $DEFAULT)"
        install -d -m 0755 "$CONF_DIR"
        install -m 0644 "$DEFAULT" "$CONF"
    else
        note "WARNING: the installed package has no $DEFAULT; $CONF not written"
    fi
fi

if [ -f "$CONF" ] && "$VENV/bin/ferlite" check --help >/dev/null 2>&1; then
    # The config, model and detector as the service would load them, on the sample photo instead of the camera.
    SAMPLE=$("$PY" -c 'import importlib.resources as r; print(r.files("ferlite.edge") / "data" / "sample.jpg")')
    say "check: ferlite check --config $CONF --source $SAMPLE --frames 1"
    "$VENV/bin/ferlite" check --config "$CONF" --source "$SAMPLE" --frames 1 2>&1 | sed 's/^/    /' \
        || die "ferlite check failed with $CONF (see above): fix it, then run install.sh again"
fi

# 6. unit ------------------------------------------------------------------------------------------
# The unit's Documentation= points at $SHARE/README.md; uninstall.sh goes along for removal without the repo.
say "docs: $SHARE (README.md, $UNIT, uninstall.sh)"
install -d -m 0755 "$SHARE"
for f in README.md "$UNIT" "$KIOSK_UNIT" uninstall.sh; do
    [ -f "$SCRIPT_DIR/$f" ] && install -m 0644 "$SCRIPT_DIR/$f" "$SHARE/$f"
done
chmod 0755 "$SHARE/uninstall.sh" 2>/dev/null || true
unit_changed=1
cmp -s "$SCRIPT_DIR/$UNIT" "$UNIT_DIR/$UNIT" 2>/dev/null && unit_changed=0
say "unit: $UNIT_DIR/$UNIT$([ $unit_changed = 0 ] && echo ' (unchanged)')"
install -D -m 0644 "$SCRIPT_DIR/$UNIT" "$UNIT_DIR/$UNIT"
if ! command -v systemd-analyze >/dev/null; then
    note "skipping systemd-analyze verify: systemd-analyze not found"
else
    if ! out=$(systemd-analyze verify "$UNIT_DIR/$UNIT" 2>&1); then
        printf '%s\n' "$out" >&2
        die "systemd-analyze verify $UNIT_DIR/$UNIT failed"
    fi
    if [ -n "$out" ]; then
        note "systemd-analyze verify printed warnings:"
        printf '%s\n' "$out" | sed 's/^/      /'
    else
        note "systemd-analyze verify: ok"
    fi
fi

# 7. enable and start ------------------------------------------------------------------------------
if [ "$ENABLE" = 0 ]; then
    say "service: not enabled (--no-enable)"
elif ! command -v systemctl >/dev/null; then
    say "service: systemctl not found (no systemd here): not enabled, not started"
else
    systemd_running && systemctl daemon-reload
    say "service: enabling $UNIT"
    systemctl enable "$UNIT"
    if [ "$START" = 0 ]; then
        say "service: not started (--no-start); start it with: systemctl start $UNIT"
    elif ! systemd_running; then
        say "service: systemd is not running here (a chroot?): not started; it starts at the next boot"
    else
        say "service: (re)starting $UNIT"
        if ! systemctl restart "$UNIT"; then
            systemctl --no-pager --full status "$UNIT" >&2 || true
            journalctl --no-pager -n 40 -u "$UNIT" >&2 || true
            die "$UNIT failed to start. Everything else is installed: fix the cause shown above (the camera,
    or $CONF; check it with: $VENV/bin/ferlite check --config $CONF), then: systemctl restart $UNIT"
        fi
        systemctl --no-pager --lines=5 status "$UNIT" || true
    fi
fi

# 8. kiosk screen ----------------------------------------------------------------------------------
if [ "$KIOSK" = 1 ]; then
    say "kiosk: user ferlite-kiosk, $UNIT_DIR/$KIOSK_UNIT, [http] kiosk = true in $CONF"
    install -D -m 0644 "$SCRIPT_DIR/ferlite-kiosk.sysusers.conf" "$SYSUSERS_DIR/ferlite-kiosk.conf"
    systemd-sysusers "$SYSUSERS_DIR/ferlite-kiosk.conf"
    install -D -m 0644 "$SCRIPT_DIR/$KIOSK_UNIT" "$UNIT_DIR/$KIOSK_UNIT"
    out=$(systemd-analyze verify "$UNIT_DIR/$KIOSK_UNIT" 2>&1) || { printf '%s\n' "$out" >&2; die "systemd-analyze verify $KIOSK_UNIT failed"; }
    [ -z "$out" ] || { note "systemd-analyze verify printed warnings:"; printf '%s\n' "$out" | sed 's/^/      /'; }
    # [http] kiosk = true: set the key where it is, else add it to [http] (or add the section).
    "$PY" - "$CONF" <<'EOF2'
import re, sys
from pathlib import Path

path = Path(sys.argv[1])
text = path.read_text() if path.exists() else ""
if re.search(r"(?m)^kiosk\s*=", text):
    text = re.sub(r"(?m)^kiosk\s*=.*$", "kiosk = true", text)
elif re.search(r"(?m)^\[http\]\s*$", text):
    text = re.sub(r"(?m)^\[http\]\s*$", "[http]\nkiosk = true", text, count=1)
else:
    text += "\n[http]\nkiosk = true\n"
path.write_text(text)
EOF2
    "$PY" -m ferlite.edge.kiosk --config "$CONF" >/dev/null || die "[http] kiosk is not on in $CONF (see above)"
    # ferlite serves the page on loopback: the unit allows no IP traffic, so allow loopback (systemd/README.md,
    # "A network camera"); a drop-in of the user's own that allows more still applies beside this one.
    DROPIN=$UNIT_DIR/$UNIT.d/kiosk.conf
    install -d -m 0755 "$UNIT_DIR/$UNIT.d"
    printf '%s\n' "# Written by install.sh --kiosk: the kiosk page is served on loopback." "[Service]" \
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6" "IPAddressAllow=localhost" > "$DROPIN"
    systemctl enable seatd.service "$KIOSK_UNIT"
    if [ "$START" = 1 ] && systemd_running; then
        systemctl daemon-reload
        systemctl restart "$UNIT" "$KIOSK_UNIT" || die "$KIOSK_UNIT failed to start: journalctl -u $KIOSK_UNIT"
    fi
fi
say "done: venv $VENV, config $CONF, unit $UNIT_DIR/$UNIT"
