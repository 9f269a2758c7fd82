#!/bin/bash
# Runs inside the built root file system (build-rootfs.sh): the installed app answers, its
# units verify, the first-boot step writes a config, and the real app starts as the kiosk
# user under Xvfb and reports READY=1 the way systemd would receive it.
set -euo pipefail
role=device
[ "${1:-}" = --role ] && role=$2

kiosk=/opt/kiosk/current/bin/kiosk
"$kiosk" --version
id kiosk
if command -v systemd-analyze >/dev/null; then
  if [ "$role" = device ]; then
    units=(kiosk@till.service kiosk-firstboot.service kiosk-update.service kiosk-update.timer)
  else
    units=(storehub.service storehub-dashboard.service kiosk-backup.service kiosk-backup.timer
           mosquitto.service)
  fi
  out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "${units[@]}" 2>&1) || { echo "$out"; exit 1; }
  [ -z "$out" ] || { echo "systemd-analyze verify: $out"; exit 1; }
fi
[ "$(readlink -f /etc/systemd/system/getty@tty1.service)" = /dev/null ] || [ "$role" = hub ]

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$role" = hub ]; then
  # The hub as its user with an embedded broker, then the nightly backup and a restore of it.
  chmod 0755 "$work"
  install -d -o storehub -g storehub -m 0700 "$work/hub"
  runuser -u storehub -- /opt/kiosk/current/bin/storehub run --store smoke-laden \
    --db "$work/hub/hub.db" --embedded --port 18830 &
  hub=$!
  for _ in $(seq 60); do [ -s "$work/hub/hub.db" ] && break; sleep 1; done
  sleep 3
  kill -0 "$hub"  # still running
  /opt/kiosk/current/bin/kiosk backup --db "$work/hub/hub.db" --to "$work/backups" --keep 3
  kill "$hub"
  wait "$hub" || true
  saved=$(/opt/kiosk/current/bin/kiosk backup --list --to "$work/backups")
  /opt/kiosk/current/bin/kiosk restore "$saved" --db "$work/hub/hub.db" --yes
  echo "smoke test passed (hub)"
  exit 0
fi
cat > "$work/kiosk.toml" <<'EOF'
[device]
store_id = "smoke-laden"
device_id = "till-1"
device_no = 1
mode = "till"
[hub]
host = "192.0.2.1"
password = "not-on-the-card"
[ui]
fullscreen = false
width = 800
height = 600
EOF
install -d -o kiosk -g kiosk -m 0700 "$work/data"
/usr/local/sbin/kiosk-firstboot --boot "$work/kiosk.toml" --data "$work/data" --etc "$work/etc" --no-start
if grep -q not-on-the-card "$work/kiosk.toml"; then echo "secret left on the boot partition"; exit 1; fi
chown -R kiosk:kiosk "$work/data"
chmod 0755 "$work" && chmod 0644 "$work/etc/kiosk/device.toml"
"$kiosk" --config "$work/etc/kiosk/device.toml" update selftest

# The app itself, as the unprivileged user, with a notify socket standing in for systemd.
# Xvfb is started outside that environment (Xorg servers send READY=1 themselves), and only
# messages from the app's own pid count.
runuser -u kiosk -- env HOME="$work/data" KIVY_HOME="$work/data/.kivy" \
  xvfb-run -a -s "-screen 0 1024x768x24" /opt/kiosk/current/bin/python - "$work" <<'EOF'
import os, socket, struct, subprocess, sys
work = sys.argv[1]
path = os.path.join(work, "data", "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.settimeout(180)
env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}
app = subprocess.Popen(["/opt/kiosk/current/bin/kiosk", "--config", f"{work}/etc/kiosk/device.toml"],
                       env=env)
got = []
try:
    while len(got) < 3:
        msg, anc, _flags, _addr = sock.recvmsg(64, socket.CMSG_SPACE(12))
        if anc and struct.unpack("iII", anc[0][2])[0] == app.pid:
            got.append(msg)
finally:
    app.terminate()
    app.wait(60)
# a longer start timeout while the database opens (migrations), then ready, then the pings
assert got[0].startswith(b"EXTEND_TIMEOUT_USEC=") and got[1:] == [b"READY=1", b"WATCHDOG=1"], got
print("app started: start timeout extended, READY=1, then WATCHDOG=1, from pid", app.pid)
EOF
echo "smoke test passed (device)"
