#!/usr/bin/env bash
# Installs every Debian package pixserve needs to build, run and test.
# Idempotent: packages already present are not reinstalled, and apt is only
# consulted when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libcfitsio-dev wcslib-dev libhealpix-cxx-dev
  libsqlite3-dev libpq-dev
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpng-dev libjpeg-dev libssl-dev libpugixml-dev libyaml-cpp-dev
  libgtest-dev googletest
  clang libclang-rt-14-dev clang-tidy
  python3 python3-pytest python3-pyvo python3-astropy python3-astropy-healpix
  python3-numpy python3-requests
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
