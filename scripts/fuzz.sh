#!/usr/bin/env bash
# Runs every native fuzz target in the module for a short time each.
#
# The go fuzzer sometimes ends a run that found nothing with "context
# deadline exceeded", when the time runs out while it is still minimising a
# new interesting (not failing) input. Such a run is repeated once; a run
# that wrote a failing input always fails.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
n=0
run() {
  go test -run='^$' -fuzz="^$2\$" -fuzztime="$t" -fuzzminimizetime=2s "$1" >"$log" 2>&1
}
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  echo "fuzz: $pkg $name ($t)"
  if ! run "$pkg" "$name"; then
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
      echo "fuzz: $name stopped while minimising (no failure found); running it again"
      run "$pkg" "$name" || { cat "$log"; exit 1; }
    else
      cat "$log"
      exit 1
    fi
  fi
  n=$((n+1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd | sort)
echo "fuzz: $n targets passed"
