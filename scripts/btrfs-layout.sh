#!/usr/bin/env bash
# btrfs-layout.sh SRC_ROOT DST_ROOT: lays a legacy graph whose btrfs/subvolumes/<id> are plain
# directories (as the btrfs golden is packed) out as Docker 1.9's btrfs driver made it on a btrfs
# filesystem: a base layer is a subvolume, a child a snapshot of its parent's subvolume, then
# brought to its own contents (rsync --delete keeps unchanged files shared with the snapshot).
# DST_ROOT must be on btrfs. graph/, containers/ and repositories-btrfs are copied.
set -euo pipefail
src=$1 dst=$2
mkdir -p "$dst/btrfs/subvolumes"
cp -a "$src/graph" "$dst/graph"
[ -d "$src/containers" ] && cp -a "$src/containers" "$dst/containers"
[ -f "$src/repositories-btrfs" ] && cp -a "$src/repositories-btrfs" "$dst/"
parent_of() {
  local g=$src/graph/$1 p
  if [ -s "$g/parent" ]; then cat "$g/parent"; return; fi
  python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
p=j.get("parent") or ""
pid=j.get("parent_id") or ""
print(p or (pid.split(":",1)[1] if ":" in pid else ""))' "$g/json" 2>/dev/null || true
}
done_ids=" "
make() {
  local id=$1 parent
  case $done_ids in *" $id "*) return ;; esac
  parent=$( [ -d "$src/graph/$id" ] && parent_of "$id" || true )
  if [ -n "$parent" ] && [ -d "$src/btrfs/subvolumes/$parent" ]; then
    make "$parent"
    btrfs -q subvolume snapshot "$dst/btrfs/subvolumes/$parent" "$dst/btrfs/subvolumes/$id"
  else
    btrfs -q subvolume create "$dst/btrfs/subvolumes/$id"
  fi
  rsync -aHAX --delete --numeric-ids "$src/btrfs/subvolumes/$id/" "$dst/btrfs/subvolumes/$id/"
  done_ids="$done_ids$id "
}
for dir in "$src"/btrfs/subvolumes/*; do
  id=$(basename "$dir")
  case $id in *-init) continue ;; esac
  make "$id"
done
for dir in "$src"/btrfs/subvolumes/*-init; do
  [ -e "$dir" ] || continue
  id=$(basename "$dir"); btrfs -q subvolume create "$dst/btrfs/subvolumes/$id"
  rsync -aHAX --delete --numeric-ids "$dir/" "$dst/btrfs/subvolumes/$id/"
done
