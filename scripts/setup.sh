#!/usr/bin/env bash
# setup.sh installs what the tests need and a fresh Debian machine with only Go and Node lacks,
# and does nothing else when it is all there. `make test` runs it first; so does .ci/run on a
# machine without make. It is the one place that knows how the tools are installed.
#
#   pnpm             the version of package.json's "packageManager", into .build/tools (npm -g
#                    with a prefix of the clone's own, so neither root nor a writable global npm
#                    is needed, and another pnpm on PATH is never replaced); the Makefile puts
#                    .build/tools/bin first on PATH. A pnpm of that version on PATH is used as is.
#   JS packages      pnpm install --frozen-lockfile (the lockfile's versions, never updated)
#   Go modules       go mod download
#   make, gcc        Debian's (gcc: `go test -race` needs cgo)
#   Chromium         Debian's, at /usr/bin/chromium, unless CHROMIUM_PATH names one that exists
#   redis-server     Debian's; the Go and JS tests start private ones on free ports
#   Redis            started on 127.0.0.1:6379 when nothing answers there
#
# apt-get needs root: run as root or with sudo available. Nothing is installed when nothing is
# missing, so an up-to-date machine needs neither.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: %s\n' "$*" >&2
  exit 1
}

# --- Go and Node: the two prerequisites, never installed here -------------------------------
command -v go >/dev/null || die "go is not on PATH: install Go 1.26 (https://go.dev/dl/)"
command -v node >/dev/null || die "node is not on PATH: install Node.js 20 or newer"
command -v npm >/dev/null || die "npm is not on PATH: it comes with Node.js"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old: Node.js 20 or newer is needed"

# --- Debian packages --------------------------------------------------------------------------
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
missing=()
command -v make >/dev/null || missing+=(make)
command -v gcc >/dev/null || missing+=(gcc)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ! -x "$chromium" ]; then
  # A CHROMIUM_PATH that was asked for and is absent is a mistake to report, not a reason to
  # install Debian's Chromium somewhere else.
  [ -z "${CHROMIUM_PATH:-}" ] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable"
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "${missing[*]} missing, and installing them needs root (or sudo)"
    sudo=(sudo)
  fi
  say "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -x "$chromium" ] || die "apt-get installed chromium but $chromium is still missing"
fi

# --- Redis on 127.0.0.1:6379 --------------------------------------------------------------------
# redis_ping answers whether a Redis server answers PING there (bash's /dev/tcp: no redis-cli
# needed, and whatever serves the port counts, a container's included).
redis_ping() {
  local reply=
  { exec 3<>/dev/tcp/127.0.0.1/6379; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [ "${reply%$'\r'}" = "+PONG" ]
}
if ! redis_ping; then
  say "starting redis-server on 127.0.0.1:6379"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" mkdir -p /var/lib/redis /var/log/redis
  "${sudo[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do # up to 5 s
    redis_ping && break
    sleep 0.1
  done
  redis_ping || die "redis-server did not answer on 127.0.0.1:6379 (see /var/log/redis/ci.log)"
fi

# --- pnpm ---------------------------------------------------------------------------------------
want=$(node -p 'require("./package.json").packageManager.replace(/^pnpm@/, "")')
tools=$root/.build/tools
export PATH=$tools/bin:$PATH
if [ "$(pnpm --version 2>/dev/null)" != "$want" ]; then
  say "installing pnpm $want into ${tools#"$root"/}"
  npm install --global --prefix "$tools" --no-audit --no-fund --loglevel=error "pnpm@$want" >/dev/null
  got=$(pnpm --version 2>/dev/null) || die "pnpm $want was installed into $tools but does not run"
  [ "$got" = "$want" ] || die "pnpm on PATH is $got, want $want"
fi

# --- modules --------------------------------------------------------------------------------------
go mod download
pnpm install --frozen-lockfile

say "ready: $(go version | cut -d' ' -f3), node $(node --version), pnpm $(pnpm --version) ($(command -v pnpm)), $("$chromium" --version 2>/dev/null || echo "chromium at $chromium"), $(redis-server --version | cut -d' ' -f1-3)"
