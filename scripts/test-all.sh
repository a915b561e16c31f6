#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs the Debian packages the tests use when they are
# missing, installs and builds the npm dependencies, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a check that it is installed
declare -A packages=(
  [websockify]='command -v websockify'                          # the reference, for the conformance table
  [bsdutils]='command -v logger'                                # syslog to a local socket
  [openssl]='command -v openssl'                                # test certificates
  [python3-websockets]="/usr/bin/python3 -c 'import websockets'" # a second, independent wss client
  [chromium]='test -x /usr/bin/chromium'                         # browser tests (playwright-core drives it)
  [socat]='command -v socat'                                    # wrapped programs, telnet under socat
  [inetutils-telnetd]='test -x /usr/sbin/telnetd'               # a real telnet server
  [inetutils-inetd]='test -x /usr/sbin/inetutils-inetd'         # telnetd's superserver
  [ngircd]='command -v ngircd'                                  # a real line-oriented (IRC) service
  [tigervnc-standalone-server]='command -v Xvnc'                # a real VNC server for noVNC
  [x11-apps]='command -v xclock'                                # something to draw on the VNC screen
  [x11-xserver-utils]='command -v xsetroot'                     # paint the VNC root window a known colour
  [redis-server]='command -v redis-server'                      # the TokenRedis plugin's store
  [gcc]='command -v cc'                                         # builds the rebind.so shim
  [libc6-dev]='test -f /usr/lib/x86_64-linux-gnu/libc.a'        # ... and a static program for its warning test
  [python3-jwcrypto]="/usr/bin/python3 -c 'import jwcrypto'"    # JWTs made by Python's own library
)
missing=()
for package in "${!packages[@]}"; do
  bash -c "${packages[$package]}" >/dev/null 2>&1 || missing+=("$package")
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
