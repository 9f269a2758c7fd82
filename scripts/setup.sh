#!/usr/bin/env bash
# Prepare a fresh Debian / Raspberry Pi OS machine: system packages (only the missing ones),
# a virtual environment in .venv and the project installed into it.
#   scripts/setup.sh demo   what the demo store needs
#   scripts/setup.sh test   that plus Xvfb, Mosquitto, Chromium and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
role=${1:-demo}

packages=(python3 python3-venv python3-dev gcc libmtdev1 libgl1-mesa-dri libegl1 xauth)
if [ "$role" = test ]; then
  packages+=(xvfb mosquitto mosquitto-clients socat chromium chromium-driver shellcheck
             debootstrap systemd fdisk fonts-dejavu-core)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a broker on port 1883; tests start their own on free ports.

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extras=hub
[ "$role" = test ] && extras=hub,test
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
