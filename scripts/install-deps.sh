#!/usr/bin/env bash
# Installs every Debian package pixserve needs to build, run and test.
# Idempotent: packages already present are not reinstalled, and apt is only
# consulted when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcfitsio-dev wcslib-dev libhealpix-cxx-dev
  libsqlite3-dev libpq-dev postgresql haproxy
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpng-dev libjpeg-dev libssl-dev libpugixml-dev libyaml-cpp-dev
  libgtest-dev googletest
  clang libclang-rt-14-dev lld clang-tidy
  python3 python3-pytest python3-pyvo python3-astropy python3-astropy-healpix
  python3-numpy python3-requests python3-pytest-xdist python3-photutils
  stilts chromium wrk
  aladin swarp montage python3-reproject
)
# Node.js and npm (Swagger UI assets, the OpenAPI validator, the browser
# tests): Debian 12's nodejs 18 is enough. A machine that already has node and
# npm (e.g. from NodeSource, which replaces Debian's nodejs package and bundles
# npm) keeps them.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages (package.json / package-lock.json at the source root) into
# node_modules/: swagger-ui-dist is served at /docs/, playwright-core and the
# OpenAPI validator run the browser tests. `npm ci` only when the lock file
# changed since the last install, so that repeated runs stay offline.
cd "$(dirname "$0")/.."
stamp=node_modules/.pixserve-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "install-deps: npm packages present"
else
  echo "install-deps: npm ci"
  # No install scripts: none of these packages needs one (swagger-ui-dist's
  # only script is an analytics ping).
  npm ci --ignore-scripts --no-audit --no-fund
  echo "$want" > "$stamp"
fi
