#!/bin/sh
# Installs zfs-fuse (through scripts/infra/zfs/install-shims.sh) and our mount.zfs, which,
# unlike the infra's, can mount a dataset again after it was unmounted (a migration mounts a
# parent layer for each child it regenerates). Usage: install.sh [INFRA_ZFS_DIR]
set -e
here=$(cd "$(dirname "$0")" && pwd)
infra=${1:-$here/../infra/zfs}
sh "$infra/install-shims.sh"
install -m 0755 "$here/mount.zfs" /sbin/mount.zfs
