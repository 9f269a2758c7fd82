#!/bin/bash
# Build a Debian (bookworm) root file system with the appliance installed, the same install
# step the Raspberry Pi image runs (install-app.sh), then check in it that the app starts.
#
#   sudo image-build/build-rootfs.sh [--arch amd64|arm64] [--role device|hub] [--out DIR]
#                                    [--mirror URL] [--keep-base]
#
# Needs root, debootstrap and network (a few minutes). arm64 on an amd64 host also needs
# qemu-user-static with binfmt_misc. The result is a directory, not a bootable image: the Pi
# image comes from build-pi-image.sh (pi-gen), which runs the same install-app.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
arch=$(dpkg --print-architecture)
role=device
out=$repo/build/rootfs
mirror=http://deb.debian.org/debian
suite=bookworm
keep_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --role) role=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --keep-base) keep_base=1; shift ;;
    *) echo "build-rootfs.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }

# What the app needs at run time (same list as pi-gen/stage-kiosk/00-app/00-packages).
packages=$(grep -v '^#' "$here/pi-gen/stage-kiosk/00-app/00-packages" | tr '\n' ' ')
packages="$packages systemd systemd-sysv dbus udev ca-certificates xvfb xauth"
[ "$role" = hub ] && packages="$packages mosquitto procps"  # procps: /bin/kill of ExecReload

# nothing of the build host's environment (pip index, proxies, CA paths) leaks into the chroot
clean_env=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
           HOME=/root LANG=C.UTF-8 TERM=dumb)
mounted=()
cleanup() {
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" || true; done
  mounted=()
}
trap cleanup EXIT
mount_api() {  # $1: root to chroot into
  for fs in proc sys dev dev/pts; do
    mount --bind "/$fs" "$1/$fs"
    mounted+=("$1/$fs")
  done
  cp /etc/resolv.conf "$1/etc/resolv.conf"
}

base=$out.base-$arch-$role
if [ "$keep_base" -eq 1 ] && [ -e "$base/.complete" ]; then
  echo "== reusing $base"
else
  rm -rf "$base"
  echo "== debootstrap $suite $arch into $base"
  debootstrap --variant=minbase --arch="$arch" "$suite" "$base" "$mirror"
  mount_api "$base"
  printf '#!/bin/sh\nexit 101\n' > "$base/usr/sbin/policy-rc.d"  # start no daemons in the chroot
  chmod 755 "$base/usr/sbin/policy-rc.d"
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  chroot "$base" "${clean_env[@]}" DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends $packages
  chroot "$base" apt-get clean
  rm "$base/usr/sbin/policy-rc.d"
  cleanup
  touch "$base/.complete"
fi
rm -rf "$out"
cp -a "$base" "$out"

# The wheels are built on the host with the host's pip configuration (index, CA): for the
# host's own architecture the app and every dependency (an offline install, the same
# wheelhouse updates use); for another one only the app, and pip fetches the rest in the chroot.
staging=$out/tmp/kiosk-src
mkdir -p "$staging/dist" "$staging/docs"
extras=""
[ "$role" = hub ] && extras="[hub]"
install_args=(--src /tmp/kiosk-src --role "$role")
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
  "$repo/.venv/bin/python" -m pip wheel --quiet -w "$staging/dist" "$repo$extras"
  install_args+=(--offline)
else
  "$repo/.venv/bin/python" -m pip wheel --quiet --no-deps -w "$staging/dist" "$repo"
fi
cp -r "$repo/systemd" "$staging/"
mkdir -p "$staging/image-build"
cp -r "$here/files" "$staging/image-build/"
cp "$repo/docs/appliance.md" "$staging/docs/"
cp "$here/install-app.sh" "$here/smoke-test.sh" "$staging/"

mount_api "$out"

echo "== install step (install-app.sh --role $role)"
chroot "$out" "${clean_env[@]}" /bin/bash /tmp/kiosk-src/install-app.sh "${install_args[@]}"
echo "== smoke test inside the root file system"
chroot "$out" "${clean_env[@]}" /bin/bash /tmp/kiosk-src/smoke-test.sh --role "$role"
rm -rf "$staging"
echo "== done: $out"
