# Guest task: lays the vfs layers in /src/graph/vfs/dir out as Docker 1.9's
# devicemapper driver did on a loop-lvm pool, with the kernel's thin-pool
# target: two sparse files under /work/docker/devicemapper/devicemapper, the
# pool over them (64 KiB blocks, skip_block_zeroing, as Docker's table), an
# ext4 base device, and per layer a thin snapshot of its parent (or of the
# base) holding the layer's files under rootfs/ and its id in id.
#
# /src/plan has one line per device, in creation order:
#   <device id> <origin device id, or -> <layer id, or base>
# /src/pool.env sets DEVICE_SIZE, DATA_SIZE and METADATA_SIZE (bytes).
set -eu
trap 'echo 1 > /tmp/status' EXIT
. /src/pool.env
home=/work/docker/devicemapper
mkdir -p "$home/devicemapper" "$home/mnt"
truncate -s "$DATA_SIZE" "$home/devicemapper/data"
truncate -s "$METADATA_SIZE" "$home/devicemapper/metadata"
data=$(losetup -f --show "$home/devicemapper/data")
metadata=$(losetup -f --show "$home/devicemapper/metadata")
# Docker's pool name: docker-<major>:<minor>-<inode>-pool of the driver's home.
set -- $(stat -c '%d %i' "$home")
pool="docker-$(( ($1 >> 8) & 0xfff )):$(( ($1 & 0xff) | (($1 >> 12) & 0xfff00) ))-$2-pool"
dmsetup create "$pool" --table "0 $((DATA_SIZE / 512)) thin-pool $metadata $data 128 32768 1 skip_block_zeroing"
sectors=$((DEVICE_SIZE / 512))
devices=0
while read -r device origin name; do
  if [ "$origin" = "-" ]; then
    dmsetup message "$pool" 0 "create_thin $device"
  else
    dmsetup message "$pool" 0 "create_snap $device $origin"
  fi
  dmsetup create "thin-$device" --table "0 $sectors thin /dev/mapper/$pool $device"
  if [ "$name" = base ]; then
    mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "/dev/mapper/thin-$device"
  else
    mkdir -p "$home/mnt/$name"
    mount "/dev/mapper/thin-$device" "$home/mnt/$name"
    mkdir -p "$home/mnt/$name/rootfs"
    rsync -aHAX --delete --numeric-ids "/src/graph/vfs/dir/$name/" "$home/mnt/$name/rootfs/"
    printf %s "$name" > "$home/mnt/$name/id"
    umount "$home/mnt/$name"
  fi
  dmsetup remove "thin-$device"
  devices=$((devices + 1))
  echo "build-pool: device $device ($name) from ${origin}"
done < /src/plan
# Docker's transaction bookkeeping: the pool's id equals open_transaction_id.
dmsetup message "$pool" 0 "set_transaction_id 0 $devices"
dmsetup status "$pool"
dmsetup remove "$pool"
losetup -d "$data" "$metadata"
trap - EXIT
echo 0 > /tmp/status
echo "build-pool: $devices devices in $pool"
