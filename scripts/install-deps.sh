#!/usr/bin/env bash
# Install what xanet's tests and demo need on a fresh Debian/Ubuntu machine:
# the real services (Debian packages) and a virtualenv with the project.
# Idempotent: a second run installs nothing new. Starts no service.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(mosquitto mosquitto-clients snmpd snmp influxdb influxdb-client victoria-metrics
      prometheus-alertmanager nftables iproute2 systemd
      libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-core fonts-dejavu-core
      chromium poppler-utils socat)
missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${missing[*]}"
    # Do not let the packages' own init scripts start daemons: xanet starts its own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.xanet-installed
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi
