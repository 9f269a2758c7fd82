#!/bin/bash -e
# pi-gen: read-only root (overlayroot on tmpfs), the data partition for SQLite, no screen
# blanking, no automatic growth of the root partition (the data partition grows instead).
on_chroot <<'CHROOT'
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends overlayroot
# Only the root is overlaid; /data (and what is bound from it) stays writable.
sed -i 's/^overlayroot=.*/overlayroot="tmpfs:recurse=0"/' /etc/overlayroot.conf
CHROOT
cmdline="${ROOTFS_DIR}/boot/firmware/cmdline.txt"
# consoleblank=0: the kiosk draws on tty1 itself and must never go dark; no resize of root.
sed -i -e 's/ init=[^ ]*//' -e 's/ quiet//' -e 's/$/ consoleblank=0 quiet/' "$cmdline"
grep -q '^auto_initramfs=1' "${ROOTFS_DIR}/boot/firmware/config.txt" || \
  echo 'auto_initramfs=1' >> "${ROOTFS_DIR}/boot/firmware/config.txt"
# The data partition (added by add-data-partition.sh) and the bind mounts that live on it.
cat >> "${ROOTFS_DIR}/etc/fstab" <<'FSTAB'
LABEL=KIOSKDATA  /data            ext4  defaults,noatime,commit=5,errors=remount-ro  0  2
/data/kiosk      /var/lib/kiosk   none  bind,x-systemd.requires-mounts-for=/data,nofail  0  0
/data/opt-kiosk  /opt/kiosk       none  bind,x-systemd.requires-mounts-for=/data,nofail  0  0
/data/journal    /var/log/journal none  bind,x-systemd.requires-mounts-for=/data,nofail  0  0
FSTAB
install -d "${ROOTFS_DIR}/data" "${ROOTFS_DIR}/var/log/journal"
# Grow the data partition (the last one) to the card's size on the first boot.
install -m 0755 files/kiosk-grow-data "${ROOTFS_DIR}/usr/local/sbin/kiosk-grow-data"
install -m 0644 files/kiosk-grow-data.service "${ROOTFS_DIR}/etc/systemd/system/"
on_chroot <<'CHROOT'
systemctl enable kiosk-grow-data.service
CHROOT
