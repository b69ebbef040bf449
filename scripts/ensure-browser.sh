#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (a browser download is impossible here) and inject
# axe-core from the npm registry (and the libraries the Data Docs pages load from CDNs, which the tests
# serve to them instead): install them when missing. Nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f build/npm/node_modules/axe-core/axe.min.js ] || [ ! -f build/npm/node_modules/bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js ]; then
    mkdir -p build/npm
    cp scripts/browser/package.json build/npm/package.json
    npm install --prefix build/npm --no-audit --no-fund --silent
fi
echo "browser: $(/usr/bin/chromium --version 2>/dev/null || echo missing); axe-core: build/npm/node_modules/axe-core"
