#!/usr/bin/env bash
# Remove what install.sh installed: the service, the venv and the user.
# Keeps the expression log (/var/lib/ferlite) and the config (/etc/ferlite) unless --purge.
set -euo pipefail

VENV=/opt/ferlite/venv
SHARE=/opt/ferlite/systemd
CONF_DIR=/etc/ferlite
UNIT=ferlite.service
UNIT_DIR=/etc/systemd/system
USER_NAME=ferlite
STATE_DIRS=(/var/lib/ferlite /var/lib/private/ferlite /var/log/ferlite)
SYSUSERS_CONF=/etc/sysusers.d/ferlite.conf
PURGE=0

usage() {
    cat <<EOF
Usage: sudo $(basename "$0") [--purge]

Stop, disable and remove $UNIT_DIR/$UNIT, remove the venv $VENV, $SHARE and the system user '$USER_NAME'
(and $SYSUSERS_CONF). The apt packages (python3-picamera2, python3-venv, python3-numpy) stay.

Options:
  --purge     also delete the data and settings that are kept by default:
              ${STATE_DIRS[*]} (the expression log), $CONF_DIR (the config)
              and $UNIT_DIR/$UNIT.d (local overrides of the unit)
  -h, --help  show this help
EOF
}

say() { printf '==> %s\n' "$*"; }
die() { printf 'uninstall.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"

systemd_running() { [ -d /run/systemd/system ]; }

if command -v systemctl >/dev/null; then
    if systemd_running; then
        say "service: stopping and disabling $UNIT"
        systemctl disable --now "$UNIT" 2>/dev/null || true
    elif [ -e "$UNIT_DIR/$UNIT" ]; then
        say "service: disabling $UNIT (systemd is not running here)"
        systemctl disable "$UNIT" 2>/dev/null || true
    fi
fi
if [ -e "$UNIT_DIR/$UNIT" ]; then
    say "unit: removing $UNIT_DIR/$UNIT"
    rm -f "$UNIT_DIR/$UNIT"
fi
if [ "$PURGE" = 1 ] && [ -d "$UNIT_DIR/$UNIT.d" ]; then
    say "unit: removing $UNIT_DIR/$UNIT.d"
    rm -rf "$UNIT_DIR/$UNIT.d"
fi
if command -v systemctl >/dev/null && systemd_running; then
    systemctl daemon-reload
    systemctl reset-failed "$UNIT" 2>/dev/null || true
fi

if [ -d "$VENV" ]; then
    say "venv: removing $VENV"
    rm -rf "$VENV"
fi
if [ -d "$SHARE" ]; then
    say "docs: removing $SHARE"
    rm -rf "$SHARE"
fi
rmdir "$(dirname "$VENV")" 2>/dev/null || true

# The sysusers.d file first: otherwise systemd-sysusers would create the user again at the next boot.
[ -e "$SYSUSERS_CONF" ] && { say "user: removing $SYSUSERS_CONF"; rm -f "$SYSUSERS_CONF"; }
if id -u "$USER_NAME" >/dev/null 2>&1; then
    say "user: removing $USER_NAME"
    userdel "$USER_NAME"
fi
getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME" 2>/dev/null || true

if [ "$PURGE" = 1 ]; then
    for d in "${STATE_DIRS[@]}" "$CONF_DIR"; do
        [ -e "$d" ] && { say "purge: removing $d"; rm -rf "$d"; }
    done
else
    for d in "${STATE_DIRS[@]}" "$CONF_DIR"; do
        [ -e "$d" ] && say "kept: $d (delete it with --purge)"
    done
fi
say "done"
