#!/usr/bin/env bash
# Builds Docker's own migrator, docker/v1.10-migrator, from a source checkout
# with Debian's Go, for `npm run bench -- --reference PATH`:
#
#   bash scripts/build-go-reference.sh SOURCE [OUT]     (OUT: /tmp/v1.10-migrator)
#
# SOURCE: a checkout (or bare clone) of github.com/docker/v1.10-migrator. It
# predates Go modules and vendors its dependencies in Godeps/_workspace, so it
# is built in GOPATH mode from a copy placed at its import path. Needs root the
# first time (apt-get install golang-go libdevmapper-dev libbtrfs-dev). The
# devmapper package is built without deferred removal (libdm_no_deferred_remove),
# which Debian 12's libdevmapper lacks; nothing in checksums uses it.
set -euo pipefail
source=${1:?usage: build-go-reference.sh SOURCE [OUT]}
out=${2:-/tmp/v1.10-migrator}
source=$(cd "$source" && pwd)

if ! command -v go >/dev/null || [ ! -e /usr/include/libdevmapper.h ] || [ ! -e /usr/include/btrfs/ioctl.h ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go libdevmapper-dev libbtrfs-dev >/dev/null
fi

gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
package="$gopath/src/github.com/docker/v1.10-migrator"
mkdir -p "$(dirname "$package")"
if [ -d "$source/.git" ] || [ -f "$source/HEAD" ]; then
  git clone -q "$source" "$package" # a checkout or a bare clone: its committed tree
else
  cp -a "$source" "$package"
fi
[ -d "$package/Godeps/_workspace" ] || { echo "$source: no Godeps/_workspace (not docker/v1.10-migrator?)" >&2; exit 1; }
(
  cd "$package"
  GO111MODULE=off GOPATH="$gopath:$package/Godeps/_workspace" GOFLAGS= \
    go build -tags libdm_no_deferred_remove -o "$out.tmp" .
)
mv "$out.tmp" "$out"
echo "built $out ($(go version | cut -d' ' -f3), $(git -C "$package" log -1 --format=%h 2>/dev/null || echo 'source copy'))"
