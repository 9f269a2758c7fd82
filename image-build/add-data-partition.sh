#!/bin/bash
# Append the writable data partition (ext4, label KIOSKDATA) to a Raspberry Pi OS image and
# fill it from a directory (the image's /opt/kiosk and an empty data layout). Works on the
# image file directly: no loop devices, no root needed (sfdisk + mke2fs -d with an offset).
#
#   add-data-partition.sh IMAGE SIZE_MB [OPT_KIOSK_DIR]
set -euo pipefail
img=${1:?image file}
size_mb=${2:?size in MiB}
opt_src=${3:-}

command -v sfdisk >/dev/null || { echo "add-data-partition.sh: sfdisk (package fdisk) missing" >&2; exit 2; }
if [ "$(sfdisk --dump "$img" | grep -c 'start=')" -ge 3 ]; then
  echo "add-data-partition.sh: $img already has three partitions (boot, root, data?)" >&2; exit 1
fi
# start of the new partition: after the last one, aligned to 4 MiB
last_end=$(sfdisk --dump "$img" | awk -F'[=,]' '/start=/ {s=$2+0; z=$4+0; e=s+z; if (e>m) m=e} END {print m}')
align=$((4 * 2048))
start=$(( (last_end + align - 1) / align * align ))
sectors=$((size_mb * 2048))
truncate -s $(( (start + sectors) * 512 )) "$img"
echo "start=$start, size=$sectors, type=83" | sfdisk --quiet --append "$img"

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
install -d -m 0755 "$tree/kiosk" "$tree/journal" "$tree/opt-kiosk"
if [ -n "$opt_src" ]; then
  cp -a "$opt_src/." "$tree/opt-kiosk/"
fi
mke2fs -q -F -t ext4 -L KIOSKDATA -d "$tree" -E offset=$((start * 512)) "$img" "${size_mb}M"
echo "add-data-partition.sh: partition at sector $start, ${size_mb} MiB, label KIOSKDATA"
