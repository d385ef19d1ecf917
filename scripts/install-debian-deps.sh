#!/usr/bin/env bash
# Install the Debian packages listed in android_demo/apt-packages.txt that are not installed yet
# (the Android core's build and native check, and the Fashion-MNIST data package).
# Used by `make android-deps` and .ci/run. Needs root or sudo; does nothing when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."
list=android_demo/apt-packages.txt
[ -f "$list" ] || exit 0
wanted=$(grep -v '^#' "$list" | grep -v '^\s*$' || true)
missing=""
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0
echo "installing Debian packages:$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq $missing
