#!/usr/bin/env bash
# Installs the Debian packages berth needs to build, run and test. Each is
# installed only when missing, so a prepared machine pays nothing.
set -euo pipefail

want=(
  busybox-static              # test images are built from its static busybox
  libseccomp-dev              # seccomp for containers (cgo, static lib)
  containernetworking-plugins # CNI bridge, host-local, portmap, loopback
  iptables iproute2 nftables  # used by the CNI plugins and network tests
  runc                        # an external OCI runtime for the runtime handler tests
  gcc libc6-dev make git ca-certificates # libc6-dev: cgo, and the static libc of berth-pidns-holder
)
if [ "${BERTH_BENCH:-}" = 1 ]; then
  want+=(containerd)          # the peer the benchmark compares against
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "Go 1.26 is needed at /usr/local/go (or on PATH)" >&2
  exit 1
fi

# critest's images need a busybox with more applets than busybox-static's;
# built once from Debian's source package and cached in build/critest.
if [ "${BERTH_CRITEST:-}" = 1 ]; then
  "$(dirname "$0")/build-busybox.sh" >/dev/null
fi
