#!/bin/bash
# Build the bootable Raspberry Pi OS (bookworm, arm64) kiosk image with pi-gen.
#
#   FIRST_USER_PASS=… image-build/build-pi-image.sh [--role device|hub] [--work DIR] [--docker]
#
# Needs root (or Docker with --docker), network and about an hour on a fast amd64 machine
# with qemu-user-static; this is not part of the test suite. The result is
# DIR/pi-gen/deploy/*.img with the data partition appended (add-data-partition.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
role=device
work=$repo/build/pi-image
docker=0
pigen_ref=2024-11-19-raspios-bookworm-arm64   # a release tag of pi-gen's arm64 branch
while [ $# -gt 0 ]; do
  case "$1" in
    --role) role=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --docker) docker=1; shift ;;
    *) echo "build-pi-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${FIRST_USER_PASS:?set FIRST_USER_PASS, the service account password (never in the repo)}"

mkdir -p "$work"
if [ ! -d "$work/pi-gen" ]; then
  git clone --depth 1 --branch "$pigen_ref" https://github.com/RPi-Distro/pi-gen.git "$work/pi-gen"
fi
stage=$work/pi-gen/stage-kiosk
rm -rf "$stage"
cp -a "$here/pi-gen/stage-kiosk" "$stage"
src=$stage/00-app/files/kiosk-src
mkdir -p "$src/dist" "$src/docs" "$src/image-build"
"$repo/.venv/bin/python" -m pip wheel --quiet --no-deps -w "$src/dist" "$repo"
cp -r "$repo/systemd" "$src/"
cp -r "$here/files" "$src/image-build/"
cp "$repo/docs/appliance.md" "$src/docs/"
cp "$here/install-app.sh" "$src/"

{
  cat "$here/pi-gen/config"
  echo "FIRST_USER_PASS=$FIRST_USER_PASS"
  echo "KIOSK_ROLE=$role"
} > "$work/pi-gen/config"
chmod 600 "$work/pi-gen/config"
# stages 0-2 build Raspberry Pi OS Lite; only our stage exports an image
touch "$work/pi-gen/stage2/SKIP_IMAGES"

cd "$work/pi-gen"
if [ "$docker" -eq 1 ]; then
  ./build-docker.sh
else
  ./build.sh
fi

img=$(find deploy -name "*retail-kiosk*.img" -printf "%T@ %p\n" | sort -n | tail -1 | cut -d" " -f2-)
rootfs=$(find work -maxdepth 3 -type d -path "*/stage-kiosk/rootfs" | head -1)
"$here/add-data-partition.sh" "$img" 1024 "$rootfs/opt/kiosk"
echo "image: $work/pi-gen/$img"
echo "write it with: rpi-imager, or dd if=$img of=/dev/sdX bs=4M conv=fsync"
