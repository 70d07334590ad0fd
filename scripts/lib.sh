# Shared by scripts/up, scripts/test and scripts/bench: checks and installs what Cairn needs.
# shellcheck shell=bash

say() { printf '%s\n' "$*" >&2; }

need_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    say "error: the Swift toolchain is missing (swift is not on PATH)."
    say "Install Swift 6.3 or newer (https://www.swift.org/install/linux/) and run this again."
    exit 1
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "error: installing packages needs root (or sudo): $*"; exit 1
  fi
}

# install_packages PKG... installs the Debian packages that are not installed yet.
install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages the build needs (libcurl4: the HTTP client webhooks are sent with).
BUILD_PACKAGES=(fuse3 libfuse3-dev libsqlite3-dev pkg-config libcurl4)
