#!/usr/bin/env bash
# Make sure the system programs the tests drive are installed: Debian packages by name.
# Installs what is missing when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail
declare -A binary=([prometheus]=prometheus [chromium]=chromium [adb]=adb [espeak-ng]=espeak-ng)
missing=()
for package in "$@"; do
  command -v "${binary[$package]:-$package}" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages: ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
  exit 2
fi
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
timeout 600 apt-get update -qq
timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
