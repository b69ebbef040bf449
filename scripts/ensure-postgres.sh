#!/usr/bin/env bash
# Make sure a PostgreSQL server accepts trust-auth connections as user postgres on 127.0.0.1:5432.
# Idempotent: installs, starts and configures only what is missing.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
WAIT_SECONDS=30

say() { echo "ensure-postgres: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "PostgreSQL is not installed; installing it with apt-get"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y postgresql
fi

[ -d /etc/postgresql ] || die "no /etc/postgresql after install; create a cluster with pg_createcluster"
VERSION="$(ls /etc/postgresql | sort -V | tail -1)"
[ -n "$VERSION" ] || die "no PostgreSQL cluster under /etc/postgresql; create one with pg_createcluster"
CONF_DIR="/etc/postgresql/$VERSION/main"

wait_ready() {
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        if pg_isready -q -h "$HOST" -p "$PORT"; then
            return 0
        fi
        sleep 1
    done
    return 1
}

if ! pg_isready -q -h "$HOST" -p "$PORT"; then
    say "starting cluster $VERSION/main"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start || say "pg_ctlcluster start returned non-zero (it may already be starting)"
fi
wait_ready || die "PostgreSQL $VERSION on $HOST:$PORT is not accepting connections after ${WAIT_SECONDS}s; see /var/log/postgresql/postgresql-$VERSION-main.log"

can_connect() { psql -h "$HOST" -p "$PORT" -U postgres -d postgres -w -tAc 'select 1' >/dev/null 2>&1; }

if ! can_connect; then
    HBA="$CONF_DIR/pg_hba.conf"
    [ -f "$HBA" ] || die "cannot connect as postgres and $HBA does not exist"
    say "switching host connections from 127.0.0.1/32 and ::1/128 to trust in $HBA"
    $SUDO sed -i -E \
        -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+)[[:alnum:]-]+#\1trust#' \
        -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+::1/128[[:space:]]+)[[:alnum:]-]+#\1trust#' \
        "$HBA"
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$HBA"; then
        echo "host    all             all             127.0.0.1/32            trust" | $SUDO tee -a "$HBA" >/dev/null
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        can_connect && break
        sleep 1
    done
    can_connect || die "cannot connect to $HOST:$PORT as user postgres without a password; check $HBA"
fi

say "PostgreSQL $VERSION is ready on $HOST:$PORT"
