#!/bin/bash -e
# pi-gen: copy the app wheel, units and install step into the image and run it in the chroot.
# build-pi-image.sh puts the staging tree (dist/, systemd/, image-build/files/, docs/,
# install-app.sh) into files/kiosk-src before pi-gen runs.
rm -rf "${ROOTFS_DIR}/tmp/kiosk-src"
cp -a files/kiosk-src "${ROOTFS_DIR}/tmp/kiosk-src"
on_chroot <<CHROOT
bash /tmp/kiosk-src/install-app.sh --src /tmp/kiosk-src --role "${KIOSK_ROLE:-device}"
rm -rf /tmp/kiosk-src
CHROOT
# the example settings file the shop owner copies and edits on the boot partition
install -m 0644 files/kiosk.toml.example "${ROOTFS_DIR}/boot/firmware/kiosk.toml.example"
