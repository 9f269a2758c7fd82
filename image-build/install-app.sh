#!/bin/bash
# The install step of the appliance image: runs INSIDE the target root file system (pi-gen's
# on_chroot, or chroot into the debootstrap tree of build-rootfs.sh) and installs the app into
# a virtual environment, the systemd units, udev rules, users and first-boot service.
#
#   install-app.sh --src /tmp/kiosk-src --role device|hub [--offline]
#
# /tmp/kiosk-src holds: dist/*.whl (the app wheel, plus dependency wheels for --offline),
# systemd/ and image-build/files/ from the repository, docs/appliance.md.
set -euo pipefail

src=/tmp/kiosk-src
role=device
offline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=$2; shift 2 ;;
    --role) role=$2; shift 2 ;;
    --offline) offline=1; shift ;;
    *) echo "install-app.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$role" in device|hub) ;; *) echo "install-app.sh: --role device|hub" >&2; exit 2 ;; esac

shopt -s nullglob
wheels=("$src"/dist/retail_kiosk-*.whl)
if [ ${#wheels[@]} -ne 1 ]; then
  echo "install-app.sh: expected exactly one retail_kiosk wheel in $src/dist" >&2
  exit 2
fi
wheel=${wheels[0]}
version=$(basename "$wheel" | cut -d- -f2)

# 1. The app in its own venv: /opt/kiosk/releases/<version>-image, /opt/kiosk/current -> it.
release=/opt/kiosk/releases/$version-image
rm -rf "$release"
python3 -m venv "$release"
pip_args=(--quiet --disable-pip-version-check --no-compile --find-links "$src/dist")
[ "$offline" -eq 1 ] && pip_args+=(--no-index)
extras=""
[ "$role" = hub ] && extras="[hub]"
"$release/bin/pip" install "${pip_args[@]}" "${wheel}${extras}"
install -d -m 0755 "$release/share/doc"
install -m 0644 "$src/docs/appliance.md" "$release/share/doc/appliance.md"
ln -sfn "releases/$version-image" /opt/kiosk/current
install -d -m 0700 /opt/kiosk/wheelhouse
cp "$src"/dist/*.whl /opt/kiosk/wheelhouse/

# 2. Users, directories, device permissions, logging.
install -D -m 0644 "$src/systemd/sysusers.d/kiosk.conf" /etc/sysusers.d/kiosk.conf
install -D -m 0644 "$src/systemd/tmpfiles.d/kiosk.conf" /etc/tmpfiles.d/kiosk.conf
install -D -m 0644 "$src/systemd/udev/70-kiosk-devices.rules" /etc/udev/rules.d/70-kiosk-devices.rules
install -D -m 0644 "$src/systemd/journald.conf.d/kiosk.conf" /etc/systemd/journald.conf.d/kiosk.conf
systemd-sysusers /etc/sysusers.d/kiosk.conf
systemd-tmpfiles --create /etc/tmpfiles.d/kiosk.conf || true  # chroot: /var/lib may be a mount later

# 3. Units.
for unit in "$src"/systemd/*.service "$src"/systemd/*.timer; do
  install -m 0644 "$unit" /etc/systemd/system/
done
install -D -m 0644 "$src/systemd/mosquitto.service.d/storehub.conf" \
  /etc/systemd/system/mosquitto.service.d/storehub.conf
for file in "$src"/systemd/default/*; do
  [ -e "/etc/default/$(basename "$file")" ] || install -m 0644 "$file" /etc/default/
done
install -m 0755 "$src/image-build/files/kiosk-firstboot" /usr/local/sbin/kiosk-firstboot
install -d -m 0755 /etc/kiosk

if [ "$role" = device ]; then
  # kiosk-firstboot starts kiosk@<mode> from the boot partition's settings at every boot.
  systemctl enable kiosk-firstboot.service kiosk-update.timer
  systemctl mask getty@tty1.service  # tty1 belongs to the kiosk
else
  install -d -m 0755 /etc/storehub
  systemctl enable storehub.service storehub-dashboard.service storehub-messaging.timer \
    kiosk-backup.timer
  if [ -e /lib/systemd/system/mosquitto.service ]; then
    systemctl enable mosquitto.service
  fi
fi
echo "install-app.sh: installed retail-kiosk $version ($role) into $release"
