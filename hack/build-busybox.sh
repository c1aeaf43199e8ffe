#!/usr/bin/env bash
# Builds a static busybox with busybox's own defconfig from Debian's source
# package, for the images the CRI conformance suite (critest) runs: they call
# applets that Debian's busybox-static leaves out (pgrep, ipcs, adduser,
# addgroup, ...). The binary is cached, so a second run costs nothing.
#
#   hack/build-busybox.sh [OUT_DIR]     # default: build/critest
#
# Prints the path of the binary on its last line of output.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-build/critest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$out/busybox

# The stamp names the version of Debian's busybox source the binary was
# built from; a newer package means a rebuild. The candidate binary
# package names its source version ("Source: busybox (V)") when the two
# differ, as after a binary-only rebuild (+bN).
want_version=$(apt-cache show --no-all-versions busybox 2>/dev/null |
  sed -n -e 's/^Source: busybox (\(.*\))$/\1/p' -e 's/^Version: //p' | head -1)
stamp=$out/busybox.version
# Without package lists (a node that never ran apt-get update) the version
# is unknown; a binary built before is then taken as it is.
if [ -x "$bin" ] && [ -f "$stamp" ] && { [ -z "$want_version" ] || [ "$(cat "$stamp")" = "$want_version" ]; }; then
  echo "$bin"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# dpkg-dev unpacks the source package (dpkg-source) and applies Debian's
# patches; libc6-dev has the static libc busybox links against.
need=()
for p in dpkg-dev libc6-dev gcc make bzip2 xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# apt-get source needs a deb-src line. The node's own sources usually list
# only binary packages, so the project adds a file of its own that mirrors
# them (same mirrors and suites) for sources, and leaves every other file
# alone.
if ! apt-cache showsrc busybox 2>/dev/null | grep -q '^Package: busybox'; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    src_list=/etc/apt/sources.list.d/berth-deb-src.sources
    [ -f "$src_list" ] || { echo "# Source packages for test tools (berth: hack/build-busybox.sh)."
      sed 's/^Types:.*$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources; } > "$src_list"
  elif grep -q '^deb ' /etc/apt/sources.list 2>/dev/null; then
    src_list=/etc/apt/sources.list.d/berth-deb-src.list
    [ -f "$src_list" ] || { echo "# Source packages for test tools (berth: hack/build-busybox.sh)."
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list; } > "$src_list"
  else
    echo "build-busybox: no Debian apt sources found to derive a deb-src entry from" >&2
    exit 1
  fi
  apt-get update -qq
fi

work=$(mktemp -d "$out/src.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  # Unsandboxed as root is expected here: apt's _apt user cannot write to
  # the build directory.
  apt-get source -qq busybox 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^dpkg-source: info' || true
)
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*' | head -1)
if [ -z "$src" ]; then
  echo "build-busybox: apt-get source busybox produced no source tree" >&2
  exit 1
fi

cd "$src"
make -s defconfig >/dev/null
# Static, so it runs in an image with nothing else in it. The tc applet does
# not build against newer kernel headers (CBQ was removed); no test needs it.
sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
       -e 's/^CONFIG_TC=y/# CONFIG_TC is not set/' .config
make -s oldconfig </dev/null >/dev/null
make -s -j"$(nproc)" busybox >"$out/busybox-build.log" 2>&1 || {
  tail -40 "$out/busybox-build.log" >&2
  exit 1
}
install -m 0755 busybox "$bin.tmp"
mv "$bin.tmp" "$bin"
dpkg-parsechangelog -l debian/changelog -S Version > "$stamp"
echo "$bin"
