#!/usr/bin/env bash
# Builds critest, the CRI conformance suite of sigs.k8s.io/cri-tools, from
# the module source the Go module proxy serves. critest is a Go test binary
# (go test -c ./cmd/critest), which `go install` cannot build, and the module
# cache is read-only, so the build runs in a writable copy. The binary is
# cached per version.
#
#   hack/build-critest.sh VERSION [OUT_DIR]     # default OUT_DIR: build/critest
#
# Prints the path of the binary on its last line of output.
set -euo pipefail

cd "$(dirname "$0")/.."
version=${1:?usage: hack/build-critest.sh VERSION [OUT_DIR]}
out=${2:-build/critest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$out/critest
stamp=$out/critest.version
if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
  echo "$bin"
  exit 0
fi

export PATH=/usr/local/go/bin:$PATH
# Outside the project's module, so its go.mod and go.work play no part.
dir=$(cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/cri-tools@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
  echo "build-critest: go mod download sigs.k8s.io/cri-tools@$version gave no source directory" >&2
  exit 1
fi

work=$(mktemp -d "$out/cri-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"
chmod -R u+w "$work"
(cd "$work" && GOWORK=off go test -c -o "$bin.tmp" ./cmd/critest)
mv "$bin.tmp" "$bin"
echo "$version" > "$stamp"
echo "$bin"
