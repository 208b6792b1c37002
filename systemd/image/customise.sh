#!/usr/bin/env bash
# Stage of build.sh: the image's own settings in the root tree ROOT (ferlite already installed by install.sh).
# Usage: customise.sh ROOT IMAGE_DIR debian|base
#   debian: fstab and the boot partition's settings (labels RASPIROOT / RASPIFIRM), network (systemd-networkd,
#           wpa_supplicant for wlan0), hostname "ferlite", avahi; base (Raspberry Pi OS): its own network stack
#           and partitions are kept.
#   both:   ferlite-firstboot.service, SSH by key only (no password, no root login, no host keys in the image:
#           each card makes its own), no user with a password, a machine-id of its own.
set -euo pipefail
R=$1 HERE=$2 KIND=$3
[ -x "$R/opt/ferlite/venv/bin/python" ] || { echo "customise.sh: $R has no /opt/ferlite/venv" >&2; exit 1; }

# first boot
install -D -m 0644 "$HERE/firstboot.py" "$R/opt/ferlite/image/firstboot.py"
install -D -m 0644 "$HERE/ferlite-firstboot.service" "$R/etc/systemd/system/ferlite-firstboot.service"
ln -sf /etc/systemd/system/ferlite-firstboot.service "$R/etc/systemd/system/multi-user.target.wants/ferlite-firstboot.service"
install -D -m 0644 "$HERE/firstboot.toml.example" "$R/opt/ferlite/image/firstboot.toml.example"

# SSH: keys only, no root; host keys are made on the card's first boot (ferlite-firstboot)
mkdir -p "$R/etc/ssh/sshd_config.d"
printf '%s\n' "# ferlite image: SSH by key only (firstboot.toml [ssh] authorized_keys)." \
    "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitRootLogin no" \
    > "$R/etc/ssh/sshd_config.d/ferlite.conf"
rm -f "$R"/etc/ssh/ssh_host_*
# No password anywhere: root's is locked ('*' from debootstrap); a Raspberry Pi OS base has user pi/rpi-first-boot.
sed -i 's/^root:[^:]*:/root:*:/' "$R/etc/shadow"
# Each card makes its own machine-id at its first boot ("uninitialized": systemd's first boot, committed to
# disk); systemd-firstboot's prompts (locale, root password) are masked: firstboot.toml does that job.
echo uninitialized > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
ln -sf /dev/null "$R/etc/systemd/system/systemd-firstboot.service"

[ "$KIND" = debian ] || exit 0

# boot partition settings: the root by label; raspi-firmware writes config.txt and cmdline.txt from these
sed -i '/^ROOTPART=/d; /^CONSOLES=/d' "$R/etc/default/raspi-firmware"
printf '%s\n' 'ROOTPART="LABEL=RASPIROOT"' 'CONSOLES="ttyS1,115200 tty0"' >> "$R/etc/default/raspi-firmware"
# The kiosk screen: KMS on the Pi's GPU (vc4) with a 3D driver for the browser.
printf '%s\n' "dtoverlay=vc4-kms-v3d" "hdmi_force_hotplug=1" "disable_overscan=1" > "$R/etc/default/raspi-firmware-custom"
cat > "$R/etc/fstab" <<'EOT'
# ferlite image: partitions by label (systemd/image/assemble.sh)
LABEL=RASPIROOT  /               ext4  rw,noatime,errors=remount-ro  0 1
# The FAT partition holds the first-boot files (secrets until they are applied): root only.
LABEL=RASPIFIRM  /boot/firmware  vfat  rw,umask=0077,noatime         0 2
EOT
echo ferlite > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tferlite\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"

# network: systemd-networkd (DHCP on Ethernet and Wi-Fi), resolved, mDNS by avahi
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/10-ethernet.network"
printf '[Match]\nName=wlan*\n\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/20-wifi.network"
mkdir -p "$R/etc/systemd/resolved.conf.d"
printf '[Resolve]\n# avahi answers HOSTNAME.local\nMulticastDNS=no\nLLMNR=no\n' > "$R/etc/systemd/resolved.conf.d/ferlite.conf"
# avahi on IPv4 only, IPv6 addresses unpublished: while still probing, it swaps the link-local address record
# for the SLAAC one, hears its own probe echoed back as a conflict and renames the device HOSTNAME-2.local
# (avahi issue #117, unfixed in Bookworm's 0.8; seen in about one boot in ten under QEMU, whose user network
# announces IPv6, as home routers do).
sed -i 's/^use-ipv6=yes$/use-ipv6=no/; s/^#\?publish-aaaa-on-ipv4=.*/publish-aaaa-on-ipv4=no/' "$R/etc/avahi/avahi-daemon.conf"
for setting in use-ipv6=no publish-aaaa-on-ipv4=no; do
    grep -qx "$setting" "$R/etc/avahi/avahi-daemon.conf" || { echo "avahi-daemon.conf: could not set $setting" >&2; exit 1; }
done
ln -sf /lib/systemd/system/systemd-networkd.service "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
mkdir -p "$R/etc/systemd/system/sockets.target.wants"
ln -sf /lib/systemd/system/systemd-networkd.socket "$R/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
ln -sf /run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
# The D-Bus wpa_supplicant is not needed: wpa_supplicant@wlan0 runs once firstboot.toml sets up Wi-Fi.
rm -f "$R/etc/systemd/system/multi-user.target.wants/wpa_supplicant.service"
# Journal in RAM (the SD card is written by the expression log only; as on Raspberry Pi OS since 2024).
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > "$R/etc/systemd/journald.conf.d/ferlite.conf"
