#!/usr/bin/env bash
# Runs every native fuzz target in the module for a short time each.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
n=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  echo "fuzz: $pkg $name ($t)"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" -fuzzminimizetime=5s "$pkg" >/tmp/keygate-fuzz.log 2>&1 || { cat /tmp/keygate-fuzz.log; exit 1; }
  n=$((n+1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd | sort)
echo "fuzz: $n targets passed"
