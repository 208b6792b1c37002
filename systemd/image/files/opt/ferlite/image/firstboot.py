"""Settings from the SD card's FAT partition, applied at boot (ferlite-firstboot.service, every boot).

  1. Once: the root partition and its file system are grown to fill the card.
  2. firstboot.toml (hostname, time zone, Wi-Fi, SSH user and keys) is checked and applied, then moved off the
     FAT partition (it holds the Wi-Fi passphrase) to /var/lib/ferlite-image/, readable by root only.
  3. ferlite.toml is checked as `ferlite check` does (the config, the model and the detector, on the sample
     photo). A good one replaces /etc/ferlite/config.toml (the old one is kept as config.toml.previous), the
     service's network drop-in is set to what it needs, and the file is moved off the card (it may hold a
     token or a password). A broken one is left where it is and the running config stays: the reasons go to
     the journal, the screen and ferlite-config-error.txt on the card.
What happened is written to ferlite-status.txt on the card. Run with the ferlite venv's python (the config
is read with ferlite's own loader); FERLITE_BOOT and FERLITE_ETC move the paths for tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

BOOT = Path(os.environ.get("FERLITE_BOOT", "/boot/firmware"))
ETC = Path(os.environ.get("FERLITE_ETC", "/etc"))
KEEP = Path("/var/lib/ferlite-image")
VENV = Path("/opt/ferlite/venv")
UNIT_DROPIN = ETC / "systemd/system/ferlite.service.d/network.conf"

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-")
SCHEMA = {"": {"hostname", "timezone", "wifi", "ssh"}, "wifi": {"country", "ssid", "passphrase"},
          "ssh": {"user", "authorized_keys"}}
RESERVED_USERS = {"root", "ferlite", "ferlite-kiosk", "daemon", "bin", "sys", "nobody"}


def say(text: str) -> None:
    print(f"ferlite-firstboot: {text}", flush=True)


def check_firstboot(data: dict, zoneinfo: Path = Path("/usr/share/zoneinfo")) -> list[str]:
    """The problems of a parsed firstboot.toml, one line each (empty: it can be applied)."""
    problems = [f"unknown key {'.'.join(filter(None, (section, key)))!r}"
                for section, table in (("", data), ("wifi", data.get("wifi", {})), ("ssh", data.get("ssh", {})))
                if isinstance(table, dict) for key in table if key not in SCHEMA[section]]
    host = data.get("hostname")
    if host is not None and not (isinstance(host, str) and HOSTNAME.match(host)):
        problems.append(f"hostname = {host!r}: 1 to 63 letters, digits and '-', not starting or ending with '-'")
    tz = data.get("timezone")
    if tz is not None and not (isinstance(tz, str) and ".." not in tz and (zoneinfo / tz).is_file()):
        problems.append(f"timezone = {tz!r}: not a time zone (e.g. \"Europe/Berlin\", \"UTC\")")
    problems += _check_wifi(data.get("wifi"))
    problems += _check_ssh(data.get("ssh"))
    return problems


def _check_wifi(wifi) -> list[str]:
    if wifi is None:
        return []
    if not isinstance(wifi, dict):
        return ["[wifi] must be a table"]
    problems = []
    if not re.fullmatch(r"[A-Z]{2}", str(wifi.get("country", ""))):
        problems.append(f"wifi.country = {wifi.get('country')!r}: the two-letter country code, e.g. \"DE\" "
                        "(it sets the radio's legal channels)")
    if not 1 <= len(str(wifi.get("ssid", "")).encode()) <= 32:
        problems.append("wifi.ssid: the network's name, 1 to 32 bytes")
    pw = str(wifi.get("passphrase", ""))
    if not (8 <= len(pw) <= 63 or re.fullmatch(r"[0-9a-fA-F]{64}", pw)):
        problems.append("wifi.passphrase: 8 to 63 characters (WPA2/WPA3 personal)")
    return problems


def _check_ssh(ssh) -> list[str]:
    if ssh is None:
        return []
    if not isinstance(ssh, dict):
        return ["[ssh] must be a table"]
    problems = []
    user = ssh.get("user", "admin")
    if not (isinstance(user, str) and USER.match(user)) or user in RESERVED_USERS:
        problems.append(f"ssh.user = {user!r}: a new user name (lower-case letters, digits, '_', '-'), not a "
                        "system user")
    keys = ssh.get("authorized_keys", [])
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip().startswith(KEY_TYPES)
                                                         for k in keys):
        problems.append("ssh.authorized_keys: a list of public keys, e.g. [\"ssh-ed25519 AAAA... me@laptop\"]")
    return problems


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


def grow_root() -> str:
    """Grow the root partition and file system to the end of the card, once."""
    done = KEEP / "root-grown"
    if done.exists():
        return ""
    source = run("findmnt", "-no", "SOURCE", "/").stdout.strip()
    disk = "/dev/" + run("lsblk", "-no", "PKNAME", source).stdout.strip()
    number = Path(f"/sys/class/block/{Path(source).name}/partition").read_text().strip()
    grown = run("growpart", disk, number, check=False)   # exit 1: NOCHANGE (already the whole card)
    if grown.returncode not in (0, 1):
        return f"growing {source} failed: {grown.stdout.strip()} {grown.stderr.strip()}"
    run("resize2fs", source)
    KEEP.mkdir(mode=0o700, parents=True, exist_ok=True)
    done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    size = run("df", "-h", "--output=size", "/").stdout.split()[-1]
    return f"root file system grown to the card: {size}"
