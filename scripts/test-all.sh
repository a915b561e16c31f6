#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs the Debian packages the tests use when they are
# missing, installs and builds the npm dependencies, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A packages=(
  [websockify]=websockify   # the reference implementation, for the conformance table
  [logger]=bsdutils         # syslog to a local socket
)
missing=()
for command in "${!packages[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${packages[$command]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test:all: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  npm run build
else
  npm ci --no-audit --no-fund
fi
node scripts/run-tests.mjs "$@"
