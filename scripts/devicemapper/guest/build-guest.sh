#!/bin/sh
# Builds the software-emulated guest that has what this machine's kernel lacks:
# device-mapper with the thin-pool target. The kernel and its modules come from
# Debian's linux-image-amd64 package (downloaded, not installed); the initramfs
# holds busybox-static, the guest scripts beside this file, and the tools the
# guest runs (dmsetup, mkfs.ext4, losetup, mount, rsync, cp) with their shared
# libraries, taken from this machine's Debian packages.
#
#   sh scripts/devicemapper/guest/build-guest.sh OUT_DIR
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initrd.gz; does nothing when both exist
# and OUT_DIR/stamp matches the scripts and the kernel package.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
need="busybox-static dmsetup e2fsprogs kmod rsync util-linux mount coreutils cpio"
missing=""
for pkg in $need; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
if [ -n "$missing" ]; then
  echo "build-guest: installing$missing" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1
fi

kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { echo "build-guest: apt knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
stamp="$kernel_pkg $(cat "$here/init" "$here/build-pool.sh" "$here/read-pool.sh" "$0" | sha256sum | cut -c1-16)"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.gz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$kernel_pkg" >/dev/null 2>&1) || { echo "build-guest: cannot download $kernel_pkg" >&2; exit 1; }
dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
version=$(ls "$work/kernel/lib/modules")
depmod -b "$work/kernel" "$version"

root=$work/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/lib/modules" "$root/tasks"
cp /bin/busybox "$root/bin/busybox"
for module in virtio_pci virtio_blk loop ext4 dm-thin-pool; do
  modprobe -d "$work/kernel" -S "$version" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
  # In kmod's order, soft dependencies included (ext4 needs a crc32c first), for insmod.
  cp "$ko" "$root/lib/modules/"
  basename "$ko" >> "$root/lib/modules/load-order"
done

# The tools, and every library they load (ldd), at the same paths as here.
for tool in bash dmsetup mkfs.ext4 losetup mount umount rsync cp stat truncate; do
  bin=$(command -v "$tool")
  cp "$bin" "$root/usr/bin/$tool"
  ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'
done | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cp "$here/init" "$root/init"
cp "$here/build-pool.sh" "$here/read-pool.sh" "$root/tasks/"
chmod +x "$root/init" "$root/tasks/"*.sh
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"
cp "$work/kernel/boot/vmlinuz-$version" "$work/vmlinuz"
mv "$work/initrd.gz" "$out/initrd.gz"
mv "$work/vmlinuz" "$out/vmlinuz"
echo "$stamp" > "$out/stamp"
echo "build-guest: $kernel_pkg, initramfs $(du -k "$out/initrd.gz" | cut -f1) KiB" >&2
