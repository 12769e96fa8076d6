#!/usr/bin/env bash
# Installs what the real-storage and real-daemon suites need on Debian 12, when
# it is missing: Debian's dockerd 20.10, zfs-fuse, thin-provisioning-tools,
# xfsprogs, btrfs-progs, skopeo, umoci, podman, qemu, ansible (the runbook's
# playbook) and the devicemapper guest's packages. Run by
# `npm test` before the suites. Idempotent; does nothing when all is there.
#
# Not root, or no apt-get: installs nothing and says loudly which suites will
# be skipped for it (each such suite is then reported as skipped, with its
# reason, in the test summary). CAS_MIGRATOR_NO_INSTALL=1 turns installing off.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need_apt=()
need() { command -v "$1" >/dev/null 2>&1 || need_apt+=("${@:2}"); }
need tar tar
need python3 python3
need rsync rsync
need thin_dump thin-provisioning-tools
need mkfs.ext4 e2fsprogs
need mkfs.xfs xfsprogs
need mkfs.btrfs btrfs-progs
need dockerd docker.io containerd runc
need zfs-fuse zfs-fuse
need skopeo skopeo
need umoci umoci
need podman podman
need ansible-playbook ansible
need musl-gcc musl musl-tools
[ -e "$(dirname "$(gcc -print-libgcc-file-name 2>/dev/null || echo /nonexistent/x)")/libstdc++.a" ] || need_apt+=(g++ libstdc++-12-dev)
# The devicemapper guest: qemu (TCG), and what goes into its initramfs.
need qemu-system-x86_64 qemu-system-x86
need depmod kmod
need cpio cpio
need dmsetup dmsetup
need losetup mount
[ -x /bin/busybox ] || need_apt+=(busybox-static)

loud() { printf '\n!!!!!!!! %s\n\n' "$*" >&2; }

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "${CAS_MIGRATOR_NO_INSTALL:-}" = 1 ]; then
    loud "install-test-deps: CAS_MIGRATOR_NO_INSTALL=1: not installing ${need_apt[*]}; the suites that need them will be SKIPPED"
  elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    loud "install-test-deps: not root on Debian (or no apt-get): cannot install ${need_apt[*]}; the suites that need them will be SKIPPED"
  else
    echo "install-test-deps: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null ||
      loud "install-test-deps: apt-get install failed; the suites that need these packages will be SKIPPED"
  fi
fi

# The devicemapper guest downloads Debian's kernel package: apt must know it.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${CAS_MIGRATOR_NO_INSTALL:-}" != 1 ]; then
  apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-' || apt-get update -qq
  # zfs-fuse with a mount.zfs that can mount a dataset again (the zfs plugin's tests).
  command -v zfs-fuse >/dev/null 2>&1 && sh "$here/zfs-fuse/install.sh" "$here/infra/zfs" ||
    loud "install-test-deps: zfs-fuse is not installed; the zfs suites will be SKIPPED"
fi
exit 0
