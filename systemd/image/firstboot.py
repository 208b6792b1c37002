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
is read with ferlite's own loader); FERLITE_BOOT, FERLITE_ETC, FERLITE_KEEP and FERLITE_VENV move the paths for tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomllib

BOOT = Path(os.environ.get("FERLITE_BOOT", "/boot/firmware"))
ETC = Path(os.environ.get("FERLITE_ETC", "/etc"))
KEEP = Path(os.environ.get("FERLITE_KEEP", "/var/lib/ferlite-image"))
VENV = Path(os.environ.get("FERLITE_VENV", "/opt/ferlite/venv"))
UNIT_DROPIN = ETC / "systemd/system/ferlite.service.d/network.conf"

HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-")
SCHEMA = {"": {"hostname", "timezone", "wifi", "ssh"}, "wifi": {"country", "ssid", "passphrase"},
          "ssh": {"user", "authorized_keys"}}
NO_NETWORK = re.compile(r"cannot be reached|cannot resolve")   # ferlite check's broker problems at boot
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
    """Grow the root partition and its file system to the end of the card, once."""
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
    done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    size = run("df", "-h", "--output=size", "/").stdout.split()[-1]
    return f"root file system grown to the card: {size}"


def host_keys() -> str:
    """This device's own SSH host keys (the image ships none, so no two cards share them)."""
    if any((ETC / "ssh").glob("ssh_host_*_key")):
        return ""
    run("ssh-keygen", "-A")
    return "SSH host keys generated"


def systemctl(*args: str) -> None:
    """systemctl on this device (not when FERLITE_ETC points elsewhere, as in the tests)."""
    if ETC == Path("/etc"):
        run("systemctl", *args, check=False)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def wpa_psk(ssid: str, passphrase: str) -> str:
    """The WPA PSK as wpa_passphrase(8) computes it, so the passphrase itself is not stored on the device."""
    if len(passphrase) == 64:
        return passphrase.lower()
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def apply_firstboot(data: dict) -> list[str]:
    """Apply a checked firstboot.toml; what was done, one line each."""
    done = []
    if host := data.get("hostname"):
        _write(ETC / "hostname", host + "\n")
        hosts = ETC / "hosts"
        lines = [ln for ln in hosts.read_text().splitlines() if not ln.startswith("127.0.1.1")]
        _write(hosts, "\n".join(lines + [f"127.0.1.1\t{host}"]) + "\n")
        if ETC == Path("/etc"):
            run("hostname", host, check=False)
        done.append(f"hostname {host} (answers as {host}.local)")
    if tz := data.get("timezone"):
        (ETC / "localtime").unlink(missing_ok=True)
        (ETC / "localtime").symlink_to(f"/usr/share/zoneinfo/{tz}")
        _write(ETC / "timezone", tz + "\n")
        done.append(f"time zone {tz}")
    if wifi := data.get("wifi"):
        ssid = wifi["ssid"]   # written as hex: any bytes, and nothing in it can add a line to the file
        _write(ETC / "wpa_supplicant/wpa_supplicant-wlan0.conf",
               f"ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\nupdate_config=0\ncountry={wifi['country']}\n"
               f"network={{\n\tssid={ssid.encode().hex()}\n\tpsk={wpa_psk(ssid, wifi['passphrase'])}\n}}\n", 0o600)
        _wifi_on_wlan0()
        done.append(f"Wi-Fi {ssid!r} ({wifi['country']})")
    if ssh := data.get("ssh"):
        done.append(_ssh_user(ssh.get("user", "admin"), ssh["authorized_keys"]))
    return done


def _wifi_on_wlan0() -> None:
    """wpa_supplicant@wlan0 starts when wlan0 appears (wanted by the device, so a Pi without Wi-Fi and the
    emulator wait for nothing)."""
    wants = ETC / "systemd/system/sys-subsystem-net-devices-wlan0.device.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "wpa_supplicant@wlan0.service"
    if not link.is_symlink():
        link.symlink_to("/lib/systemd/system/wpa_supplicant@.service")
    systemctl("daemon-reload")
    if Path("/sys/class/net/wlan0").exists():
        systemctl("--no-block", "restart", "wpa_supplicant@wlan0.service")


def _ssh_user(user: str, keys: list[str]) -> str:
    """The admin user: SSH keys only (no password exists), sudo without one."""
    if run("id", "-u", user, check=False).returncode != 0:
        run("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo,ferlite,video", user)
    home = Path(run("getent", "passwd", user).stdout.split(":")[5])
    _write(home / ".ssh/authorized_keys", "\n".join(k.strip() for k in keys) + "\n", 0o600)
    run("chown", "-R", f"{user}:{user}", str(home / ".ssh"))
    (home / ".ssh").chmod(0o700)
    _write(ETC / f"sudoers.d/ferlite-{user}", f"{user} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    return f"user {user}: {len(keys)} SSH key(s), sudo; no password"


def network_dropin(config_path: Path) -> str:
    """The ferlite unit's drop-in for what the config needs of the network (the unit alone allows none)."""
    from ferlite.edge.configfile import load  # the venv's python runs this file

    config = load(config_path)
    spec = str(config.source.spec)
    if config.mqtt.enabled or "://" in spec or (config.http.enabled and not _loopback(config.http.listen)):
        return ("# Written by ferlite-firstboot: the config needs the network.\n[Service]\n"
                "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6\nIPAddressDeny=\n")
    if config.http.enabled or config.http.kiosk:
        return ("# Written by ferlite-firstboot: the page is served on loopback.\n[Service]\n"
                "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6\nIPAddressAllow=localhost\n")
    return ""


def _loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    return host in ("127.0.0.1", "::1", "localhost")


def check_config(path: Path) -> tuple[bool, str]:
    """`ferlite check` on the config, with the sample photo as the source (a camera may not be attached yet).
    A broker that cannot be reached is not held against the config: this runs before the network is up (the
    service retries the broker itself)."""
    sample = next(VENV.glob("lib/python3*/site-packages/ferlite/edge/data/sample.jpg"), None)
    cmd = [str(VENV / "bin/ferlite"), "check", "--config", str(path), "--frames", "1"]
    r = run(*cmd, *(["--source", str(sample)] if sample else []), check=False)
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith("ferlite check:")]
    offline = problems and all(ln.startswith("ferlite check: mqtt:") and NO_NETWORK.search(ln) for ln in problems)
    return r.returncode == 0 or bool(offline), (r.stderr.strip() or r.stdout.strip())


def take_config(card: Path) -> list[str]:
    """A good ferlite.toml on the card becomes /etc/ferlite/config.toml; a broken one changes nothing."""
    ok, why = check_config(card)
    error = BOOT / "ferlite-config-error.txt"
    if not ok:
        _write(error, f"{card.name} was NOT taken (the previous config stays):\n{why}\n")
        _tell_screen(f"ferlite: {card.name} on the card is broken; the previous config stays. {why}")
        return [f"{card.name} NOT taken, the previous config stays: {' / '.join(why.splitlines()[-5:])}"]
    conf = ETC / "ferlite/config.toml"
    if conf.exists():
        shutil.copy2(conf, conf.with_name("config.toml.previous"))
    _write(conf, card.read_text(), 0o640)
    run("chgrp", "ferlite", str(conf), check=False)
    card.unlink()
    error.unlink(missing_ok=True)
    done = [f"{card.name} checked and taken as {conf} (removed from the card)"]
    if "ferlite check: mqtt:" in why:
        done.append("the MQTT broker could not be reached yet at boot; the service keeps trying it")
    dropin, want = UNIT_DROPIN, network_dropin(conf)
    if (dropin.read_text() if dropin.exists() else "") != want:
        if want:
            _write(dropin, want)
        else:
            dropin.unlink(missing_ok=True)
        systemctl("daemon-reload")
        done.append(f"network for the service: {want.splitlines()[0][2:] if want else 'none'}")
    return done


def _tell_screen(text: str) -> None:
    for tty in ("/dev/console", "/dev/tty1"):
        try:
            with open(tty, "w") as f:
                f.write(f"\n{text}\n")
        except OSError:
            pass


def take_firstboot(card: Path) -> list[str]:
    try:
        data = tomllib.loads(card.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        problems = [f"not TOML: {e}"]
    else:
        problems = check_firstboot(data)
    if problems:
        _write(BOOT / "firstboot-error.txt", "\n".join([f"{card.name} was NOT applied:", *problems]) + "\n")
        return [f"{card.name} NOT applied: {'; '.join(problems)}"]
    done = apply_firstboot(data)
    shutil.move(card, KEEP / "firstboot.toml.applied")   # it holds the Wi-Fi passphrase: off the card
    (KEEP / "firstboot.toml.applied").chmod(0o600)
    (BOOT / "firstboot-error.txt").unlink(missing_ok=True)
    return [*done, f"{card.name} applied and removed from the card"]


def main() -> int:
    KEEP.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [grow_root(), host_keys()]
    if (card := BOOT / "firstboot.toml").exists():
        lines += take_firstboot(card)
    if (card := BOOT / "ferlite.toml").exists():
        lines += take_config(card)
    lines = [ln for ln in lines if ln]
    for ln in lines:
        say(ln)
    if lines:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        _write(BOOT / "ferlite-status.txt", "".join(f"{stamp} {ln}\n" for ln in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
