#!/usr/bin/env bash
# Make sure Debian's Prometheus server and Pushgateway are installed (the service's metric tests start
# their own instances on free loopback ports, with temporary configuration and data folders).
# Idempotent: installs only what is missing; never starts or configures the packages' own services.
set -euo pipefail

say() { echo "ensure-prometheus: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    $SUDO apt-get update
    # policy-rc.d 101: the packages' own daemons are not started by the install (tests start their own)
    policy=/usr/sbin/policy-rc.d
    created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
        created=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}" || status=$?
    [ -n "$created" ] && $SUDO rm -f "$policy"
    [ "${status:-0}" -eq 0 ] || { say "ERROR: apt-get install ${missing[*]} failed"; exit 1; }
fi

command -v prometheus >/dev/null 2>&1 || { say "ERROR: no prometheus on PATH after install"; exit 1; }
command -v prometheus-pushgateway >/dev/null 2>&1 || { say "ERROR: no prometheus-pushgateway on PATH after install"; exit 1; }
say "prometheus and prometheus-pushgateway are installed"
