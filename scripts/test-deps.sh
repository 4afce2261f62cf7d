#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: the PostgreSQL
# server (Debian's postgresql package; tests start their own throwaway
# server from it) and the npm packages of the Node client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

have_pg() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if ! have_pg; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing postgresql (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # The Debian package starts a cluster of its own; tests do not use it.
    (command -v pg_ctlcluster >/dev/null && for c in /etc/postgresql/*/main; do
      [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true
    done) || true
  else
    echo "test-deps: PostgreSQL is not installed and cannot be installed here (need root and apt-get)" >&2
    [ "${CI:-}" = "true" ] && exit 1
  fi
fi

if [ -f test/node/package.json ]; then
  if command -v npm >/dev/null 2>&1; then
    if [ ! -d test/node/node_modules ] || [ test/node/package-lock.json -nt test/node/node_modules ]; then
      echo "test-deps: installing npm packages for the Node client tests"
      (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
    fi
  elif [ "${CI:-}" = "true" ]; then
    echo "test-deps: node/npm is required with CI=true" >&2
    exit 1
  fi
fi
