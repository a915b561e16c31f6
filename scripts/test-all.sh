#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs the Debian packages the tests use when they are
# missing, installs and builds the npm dependencies, lints, then runs every test twice: on the machine's
# Node.js with coverage (and its floor, .c8rc.json), and on the current LTS line (Node.js 26), installed
# from the npm registry's `node` package into .runtimes/ (outside node_modules/.bin, where it would
# shadow the machine's node in every npm script). Arguments filter the test files (as npm test's do).
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
  [inotify-tools]='command -v inotifywait'                      # watches TokenFile's reads of its files
  [gcc]='command -v cc'                                         # builds the rebind.so shim
  [libc6-dev]='test -f /usr/lib/x86_64-linux-gnu/libc.a'        # ... and a static program for its warning test
  [python3-jwcrypto]="/usr/bin/python3 -c 'import jwcrypto'"    # JWTs made by Python's own library
  [haproxy]='test -x /usr/sbin/haproxy'                         # a real PROXY protocol sender (send-proxy, -v2)
  [nginx]='test -x /usr/sbin/nginx'                             # a real reverse proxy (X-Forwarded-For), and a PROXY target
  [iproute2]='test -x /usr/sbin/ip'                             # network namespaces for the fleet test
  [openssh-server]='test -x /usr/sbin/sshd'                     # a real sshd behind websockify-client --stdio
  [openssh-client]='test -x /usr/bin/ssh'                       # ... and ssh with its ProxyCommand
  [prometheus]='test -x /usr/bin/prometheus && test -x /usr/bin/promtool' # scrapes --metrics-listen; promtool checks its output
  [libnginx-mod-stream]='test -f /usr/lib/nginx/modules/ngx_stream_module.so' # nginx's stream proxy (proxy_protocol)
  [systemd]='test -x /usr/bin/systemd-socket-activate'          # socket activation; systemd-analyze verify of the units
  [passwd]='command -v useradd'                                 # a throw-away user for --user
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

# The LTS line tested besides the machine's Node.js; README names the supported lines.
LTS_MAJOR=26

# Installs node@MAJOR from the npm registry into .runtimes/node-MAJOR once (kept there, gitignored) and
# prints the folder holding its `node`. Its own package.json allows the `node` package's preinstall
# script (which fetches the platform's binary package), so npm has nothing to warn about.
install_node() {
  local major=$1 dir=.runtimes/node-$1
  local bin=$dir/node_modules/.bin
  if [ -x "$bin/node" ] && [ "$("$bin/node" -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
    echo "$bin"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '{ "private": true, "allowScripts": { "node": true } }\n' >"$dir/package.json"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=warn "node@$major" >&2
  [ -x "$bin/node" ] || { echo "test:all: node@$major did not install into $dir" >&2; exit 1; }
  echo "$bin"
}

npm run lint
# Installed before the first run, so a failed install stops the run in seconds, not after the suite.
lts_bin=$(install_node "$LTS_MAJOR")
lts_bin=$(cd "$lts_bin" && pwd)

# Both runs go on whatever the first gives, so one CI run reports both; the exit status is the worst.
what=${*:+"the test files matching: $*"}
what=${what:-the whole suite}
status=0
start=$SECONDS
echo "test:all: run 1: $what with coverage on Node.js $(node --version) ($(command -v node))"
node scripts/test.mjs "$@" || status=1
echo "test:all: run 1 (Node.js $(node --version)) took $((SECONDS - start)) s, $([ $status -eq 0 ] && echo passed || echo FAILED)"

start=$SECONDS
lts_status=0
# First on PATH, so the CLI's `#!/usr/bin/env node` and anything the tests start run on it too.
echo "test:all: run 2: $what on Node.js $("$lts_bin/node" --version) ($lts_bin/node)"
PATH="$lts_bin:$PATH" node scripts/run-tests.mjs "$@" || lts_status=1
echo "test:all: run 2 (Node.js $("$lts_bin/node" --version)) took $((SECONDS - start)) s, $([ $lts_status -eq 0 ] && echo passed || echo FAILED)"
[ $lts_status -eq 0 ] || status=1
exit $status
